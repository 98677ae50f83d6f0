"""The OZmap Integrator's Guide operations (seed 001) as a small API for the ERP/CRM/chatbot next to the daemon.

- :mod:`.models` — typed requests and answers (msgspec Structs; they *are* the OpenAPI schemas);
- :mod:`.validation` — decoding with clear messages (coordinates in range, radius bounds…);
- :mod:`.operations` — feasibility, reservation, implantation, removal, address change, box update, lookup,
  client data; :mod:`.monitoring` — status, optical power, ONU data, PON power, read vs calculated power;
  :mod:`.notes` — pendencies, prospects, tags; :mod:`.power` — the calculated-power model (pure);
- :mod:`.http` — the aiohttp routes mounted by the daemon, :mod:`.openapi` — ``/openapi.json``;
- :mod:`.cli` — ``reconciler ozmap …``.

Every call to OZmap goes through :class:`reconciler.connectors.ozmap.guide_calls.GuideCalls`.
"""
