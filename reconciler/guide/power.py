"""The calculated optical power at a client's splitter port (seed 001 "read power vs calculated power").

OZmap publishes a "property + OLT + POP by client code" endpoint that returns the power it calculates from the
project, but its path is not public (ozmap.md F9). [assume] We calculate it the same way from documented data:
the launch power of the PON feeding the client (``PON.potency``, dBm, the value the PON-power monitoring keeps
up to date) minus the loss of every splitter on the way, following the fibre graph of the topology convention
(service splitter input fibre → the network splitter output holding it → … → the PON whose ``connectables``
holds it; see :mod:`reconciler.connectors.ozmap.topology`). A splitter's loss on an output is its
``attenuation[output]`` (a list per output, or one number), else its splitter type's, else the typical loss of a
balanced 1xN PLC splitter (:data:`TYPICAL_LOSS_DB`). Cable, fusion and connector losses are not counted (OZmap
adds them from cable lengths the API does not expose per path), so this value is an upper bound: real power is
lower by the fibre loss, which is one more reason to compare with a threshold.

Pure: the listings come from :class:`reconciler.connectors.ozmap.guide_calls.GuideCalls`.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.connectors.ozmap.guide_calls import Pon, Splitter, SplitterType
from reconciler.guide.models import PowerHop

__all__ = ["MAX_DEPTH", "TYPICAL_LOSS_DB", "PowerModel"]

#: Typical insertion loss of a balanced 1xN PLC splitter, dB (ITU-T G.671 class figures).
TYPICAL_LOSS_DB = {2: 3.7, 4: 7.1, 8: 10.5, 16: 13.7, 32: 17.1, 64: 20.5}
#: Longest chain of splitters followed (guards against cycles in bad data).
MAX_DEPTH = 8


def _loss(values: list[float | None] | float | None, index: int) -> float | None:
    if isinstance(values, int | float) and not isinstance(values, bool):
        return float(values)
    if isinstance(values, list) and 0 <= index < len(values):
        value = values[index]
        return None if value is None else float(value)
    return None


class PowerModel:
    """Calculated power at any (splitter, port), from the PONs, the network splitters and the splitter types."""

    def __init__(
        self, *, pons: Sequence[Pon], splitters: Sequence[Splitter], types: Sequence[SplitterType] = ()
    ) -> None:
        self._pon_of_fibre = {f: p for p in pons for f in p.connectables if f}
        self._upstream: dict[str, tuple[Splitter, int]] = {}
        for splitter in splitters:
            for index, fibre in enumerate(splitter.outputs()):
                if fibre:
                    self._upstream.setdefault(fibre, (splitter, index + 1))
        self._types = {t.id: t for t in types}

    def loss(self, splitter: Splitter, port: int) -> float | None:
        """Loss of ``splitter`` on 1-based output ``port``, dB; None when nothing says."""
        own = _loss(splitter.attenuation, port - 1)
        if own is not None:
            return own
        kind = self._types.get(splitter.splitter_type or "")
        if kind is not None:
            typed = _loss(kind.attenuation, port - 1)
            if typed is not None:
                return typed
        outputs = splitter.ratio.output if splitter.ratio is not None else len(splitter.outputs())
        return TYPICAL_LOSS_DB.get(outputs)

    def calculate(self, splitter: Splitter, port: int) -> tuple[float | None, list[PowerHop], str]:
        """(dBm at ``port`` of ``splitter``, the path PON first, why None when it cannot be calculated)."""
        hops: list[PowerHop] = []
        current, current_port = splitter, port
        for _ in range(MAX_DEPTH):
            loss = self.loss(current, current_port)
            name = current.name or current.id
            if loss is None:
                return None, _ordered(hops), f"splitter {name} has no attenuation for port {current_port}"
            hops.append(PowerHop("splitter", current.id, current.name, current_port, -loss))
            inputs = current.connectables.input if current.connectables is not None else []
            fibre = inputs[0] if inputs else None
            if not fibre:
                return None, _ordered(hops), f"splitter {name} has no input fibre"
            pon = self._pon_of_fibre.get(fibre)
            if pon is not None:
                launch = pon.potency if pon.potency is not None else 0.0
                hops.append(PowerHop("pon", pon.id, pon.name, None, launch))
                total = launch - sum(-h.db for h in hops if h.kind == "splitter")
                return round(total, 2), _ordered(hops), ""
            upstream = self._upstream.get(fibre)
            if upstream is None:
                return None, _ordered(hops), f"the input fibre of splitter {name} reaches no PON"
            current, current_port = upstream
        return None, _ordered(hops), f"more than {MAX_DEPTH} splitters between the client and a PON"


def _ordered(hops: list[PowerHop]) -> list[PowerHop]:
    """PON first, then the splitters from the OLT down to the client."""
    return list(reversed(hops))
