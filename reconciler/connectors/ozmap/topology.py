"""Which OLT feeds a service splitter: an index over PONs, slots, OLTs and network splitters.

OZmap has no endpoint for a box's "transmitter" (ozmap.md F11). It is derived from the fibre graph:
the splitter's first input fibre is either listed in a PON's ``connectables`` (found) or in the ``output`` of a
network splitter (``isDrop`` false), whose own first input fibre is followed in turn, up to
:data:`MAX_DEPTH` hops. The PON's slot and the slot's OLT are read from both directions of the chain
(``OLT.connectables`` = slot ids, ``Slot.connectables`` = PON ids) with the children's ``olt``/``slot``/``parent``
as a fallback, because instances fill one or the other.

:class:`TopologyBuilder` takes the four listings (a full stream feeds it page by page, so no listing is held
whole) and resolves every chain once, up front: the :class:`Topology` it builds maps each PON fibre and each
network-splitter output fibre that leads to an OLT to that OLT. It keeps no view but the OLTs, no graph and no
per-stream memo. At a million boxes that is a few million fibres, so it is held in a few numpy arrays rather than a
``dict[str, OltView]`` (a string object and a dict entry per fibre, ~120 bytes): per fibre two independent hashes
of its id — the *key*, ``hash(fibre)`` (64 bits), sorted, and the *check*, :func:`check` (32 bits) — and the index
of its OLT in a short list: 14 bytes a fibre, whatever the length of its id. (Python's string hash is SipHash
under a key drawn per process, which is all the index lives.) A fibre that leads nowhere is left out. A page's
fibres are answered together (:meth:`Topology.olts_for`: one ``numpy.searchsorted`` by key, each hit confirmed by
its check, all vectorised); the rare fibres sharing a key are told apart by their checks. Two fibres would be
taken for one only if both hashes agreed, a chance of about 2⁻⁹⁶ per pair.

The fibre ids themselves are not kept: at a million boxes their text alone was 30 MB of the cycle's peak.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import msgspec
import numpy as np
import numpy.typing as npt

from reconciler.connectors.ozmap.views import (
    NetworkSplitterView,
    OltView,
    PonView,
    ServiceSplitterView,
    SlotView,
)

#: Longest chain of network splitters followed before giving up (guards against cycles in bad data).
MAX_DEPTH = 8


class ServiceSummary(msgspec.Struct, frozen=True, gc=False):
    """A box's service splitters: how many, their summed outputs, and the first by (name, id)."""

    count: int = 0
    ports: int = 0
    first: ServiceSplitterView | None = None


def summarize(items: Sequence[ServiceSplitterView]) -> ServiceSummary:
    """Summarise one box's service splitters."""
    if len(items) == 1:  # the common case, kept cheap: this runs once per box
        only = items[0]
        return ServiceSummary(1, only.ratio.output if only.ratio is not None else 0, only)
    if not items:
        return ServiceSummary()
    first = min(items, key=splitter_order)
    ports = sum(s.ratio.output for s in items if s.ratio is not None)
    return ServiceSummary(len(items), ports, first)


def splitter_order(splitter: ServiceSplitterView) -> tuple[str, str]:
    return (splitter.name or "", splitter.id)


def first_input(splitter: NetworkSplitterView | ServiceSplitterView) -> str | None:
    """The fibre entering the splitter's first input, if any."""
    if splitter.connectables is None or not splitter.connectables.input:
        return None
    return splitter.connectables.input[0]


Ints = npt.NDArray[np.signedinteger[Any]]
_I64 = np.int64


def check(fibre: str) -> int:
    """A fibre's second hash, 32 bits, independent of ``hash(fibre)`` (SipHash of a different string)."""
    return int(_checks([fibre])[0])


class Topology:
    """Fibre → the OLT it leads to; a fibre it does not hold leads nowhere (a dead end, a cycle, too long a chain).

    Built by :class:`TopologyBuilder`, or :meth:`of` a mapping (a test's, with crafted hashes).
    """

    __slots__ = ("_answer_objects", "_answers", "_checks", "_key", "_keys")

    def __init__(
        self,
        *,
        keys: Ints,
        checks: Ints,
        answers: Ints,
        olts: Sequence[OltView],
        key: Callable[[str], int] = hash,
    ) -> None:
        """Fibre ``n`` (in ascending order of ``keys``, its ``key``; :func:`check` ``checks[n]``) leads to
        ``olts[answers[n]]``."""
        self._keys = keys
        self._checks = checks
        self._answers = answers
        self._key = key
        self._answer_objects = np.empty(len(olts) + 1, object)  # the OLTs, then None: answer -1
        for place, olt in enumerate(olts):
            self._answer_objects[place] = olt

    @classmethod
    def of(cls, olt_of_fibre: dict[str, OltView | None], *, key: Callable[[str], int] = hash) -> Topology:
        """The index of ``olt_of_fibre`` (a fibre mapped to None, or empty, is left out). ``key``: the fibre's
        64-bit hash, ``hash``; only a test passes another, to make fibres share one."""
        values = olt_of_fibre.values()
        distinct = dict(zip(map(id, values), values, strict=True))  # so an answer is the very object given
        olts = [olt for olt in distinct.values() if olt is not None]
        place_of = {id(olt): place for place, olt in enumerate(olts)}
        place_of[id(None)] = -1
        fibres = [fibre for fibre in olt_of_fibre if fibre]
        places = np.fromiter((place_of[id(olt_of_fibre[f])] for f in fibres), np.int32, len(fibres))
        keys, checks = [np.fromiter(map(key, fibres), _I64, len(fibres))], [_checks(fibres)]
        return _Fibres(keys, checks).index(places, olts, key)

    def __len__(self) -> int:
        """How many fibres lead to an OLT."""
        return len(self._keys)

    def olt_for(self, splitter: ServiceSplitterView | None) -> OltView | None:
        """The OLT feeding ``splitter``, or None when the chain is broken, cyclic or longer than MAX_DEPTH."""
        return self.olts_for([splitter])[0]

    def olts_for(self, splitters: Sequence[ServiceSplitterView | None]) -> list[OltView | None]:
        """:meth:`olt_for` of each of ``splitters`` (a page's), in one search."""
        return self.olts_of([(first_input(s) or "") if s is not None else "" for s in splitters])

    def olts_of(self, fibres: Sequence[str]) -> list[OltView | None]:
        """The OLT each fibre leads to (None: none; ``""`` stands for no fibre).

        Vectorised, with no Python step per fibre: hashed, searched by key (sorted first, which searches faster)
        and each hit confirmed by its check; only a fibre sharing its key with another is then looked at alone."""
        n = len(fibres)
        keys = self._keys
        if not len(keys) or not n:
            return [None] * n
        wanted = np.fromiter(map(self._key, fibres), _I64, n)
        order = np.argsort(wanted)
        at = np.empty(n, _I64)
        at[order] = np.searchsorted(keys, wanted[order])  # the first fibre with that key, if any
        del order
        np.minimum(at, len(keys) - 1, out=at)
        asked = np.fromiter((fibre != "" for fibre in fibres), np.bool_, n)
        hit = (keys[at] == wanted) & asked
        equal = hit & (self._checks[at] == _checks(fibres))
        answer = np.full(n, -1, _I64)  # index into _answer_objects: -1 is None
        answer[equal] = self._answers[at[equal]]
        for k in np.flatnonzero(hit & ~equal).tolist():  # another fibre with the same key, maybe (rare)
            answer[k] = self._shared(fibres[k], int(at[k]))
        return cast(list[OltView | None], self._answer_objects[answer].tolist())

    def _shared(self, fibre: str, position: int) -> int:
        """The answer of ``fibre`` among the fibres that share the key of the one at ``position``, or -1."""
        keys, checks, wanted = self._keys, self._checks, check(fibre)
        for p in range(position, len(keys)):
            if keys[p] != keys[position]:
                break
            if checks[p] == wanted:
                return int(self._answers[p])
        return -1


def _checks(fibres: Sequence[str]) -> Ints:
    """:func:`check` of each fibre: the low 32 bits of ``hash(fibre + NUL)``."""
    return np.fromiter((hash(f + "\x00") for f in fibres), _I64, len(fibres)).astype(np.int32)


def _utf8_lengths(texts: Sequence[str], total: int) -> Ints:
    """The UTF-8 length of each of ``texts``, ``total`` in all (their lengths when all are ASCII)."""
    lengths = np.fromiter(map(len, texts), _I64, len(texts))
    if int(lengths.sum()) != total:
        lengths = np.fromiter(map(len, map(str.encode, texts)), _I64, len(texts))
    return lengths


def topology(
    *,
    pons: Iterable[PonView],
    slots: Iterable[SlotView],
    olts: Iterable[OltView],
    network_splitters: Iterable[NetworkSplitterView],
) -> Topology:
    """The index of these listings (a lazy stream's traced part of the network, or a test's)."""
    builder = TopologyBuilder()
    builder.add_pons(pons)
    builder.add_slots(slots)
    builder.add_olts(olts)
    builder.add_network_splitters(network_splitters)
    return builder.build()


#: A network splitter's state while its chain is resolved: hops to a PON fibre not known yet.
_UNKNOWN = 0
#: No PON fibre within MAX_DEPTH hops (a dead end, a cycle, or too long a chain).
_BEYOND = MAX_DEPTH + 1


class TopologyBuilder:
    """Collects the listings in any order (each listing in its own order) and resolves every chain in :meth:`build`.

    Of a network splitter it keeps only its first input fibre and its output fibres, as they arrive: of each
    output fibre its key (``hash``), its check (:func:`check`) and the splitter listing it, 16 bytes a fibre rather
    than a string object in a list; the page's inputs packed in one UTF-8 string with their lengths (a string kept
    per splitter would also pin the memory of the decoded page around it). Of a PON, likewise, its fibres' keys and
    checks and its id packed, and its slot (or parent) as the place of that id in a table of the distinct ones: the
    benchmark world's 62k PONs at 1M boxes, ~35 MB as views, are ~4 MB so. Slots and OLTs, a few thousand, are kept
    whole until the build. ``key``: the fibre's 64-bit hash; only a test passes another.
    """

    def __init__(self, *, key: Callable[[str], int] = hash) -> None:
        self._key = key
        self._pon_ids = _Packed()
        """Every PON's id, in listing order."""
        self._pon_slots: list[Ints] = []
        """Pages of each PON's slot (or parent), as its place in :attr:`_slot_names`."""
        self._slot_names: dict[str, int] = {}
        """The slot (or parent) ids the PONs name, each once ("" for none), numbered as they come."""
        self._pons = 0
        """PONs so far."""
        self._pon_keys: list[Ints] = []
        """Pages of the keys of the PON fibres, in listing order (after every output at the build)."""
        self._pon_checks: list[Ints] = []
        """Their checks, page for page."""
        self._pon_owners: list[Ints] = []
        """The PON listing each of them, page for page."""
        self._slots: list[SlotView] = []
        self._olts: list[OltView] = []
        self._splitters = 0
        """Network splitters with an output fibre, so far."""
        self._inputs = _Packed()
        """Per network splitter with an output fibre, in listing order: its first input fibre ("": none)."""
        self._keys: list[Ints] = []
        """Pages of the keys of the output fibres of the network splitters, then of the PON fibres."""
        self._checks: list[Ints] = []
        """Their checks, page for page."""
        self._owners: list[Ints] = []

    def add_pons(self, rows: Iterable[PonView]) -> None:
        ids: list[str] = []
        slots: list[int] = []
        fibres: list[str] = []
        owners: list[int] = []
        names = self._slot_names
        for pon in rows:
            listed = [f for f in pon.connectables if f]
            owners.extend([self._pons + len(ids)] * len(listed))
            fibres.extend(listed)
            ids.append(pon.id)
            slots.append(names.setdefault(pon.slot or pon.parent or "", len(names)))
        if ids:
            self._pon_ids.add(ids)
            self._pon_slots.append(np.array(slots, np.int32))
            self._pons += len(ids)
        if fibres:
            self._pon_keys.append(np.fromiter(map(self._key, fibres), _I64, len(fibres)))
            self._pon_checks.append(_checks(fibres))
            self._pon_owners.append(np.array(owners, np.int32))

    def add_slots(self, rows: Iterable[SlotView]) -> None:
        self._slots.extend(rows)

    def add_olts(self, rows: Iterable[OltView]) -> None:
        self._olts.extend(rows)

    def add_network_splitters(self, rows: Iterable[NetworkSplitterView]) -> None:
        inputs: list[str] = []
        outputs: list[str] = []
        owners: list[int] = []
        for splitter in rows:
            fibres = splitter.connectables
            if splitter.is_drop or fibres is None:
                continue
            listed = [f for f in fibres.output if f]  # an output with no fibre leads nowhere
            if listed:
                owners.extend([self._splitters + len(inputs)] * len(listed))
                outputs.extend(listed)
                inputs.append((fibres.input[0] if fibres.input else None) or "")
        if outputs:
            self._add_fibres(outputs)
            self._owners.append(np.array(owners, np.int32))
            self._inputs.add(inputs)
            self._splitters += len(inputs)

    def _add_fibres(self, fibres: Sequence[str]) -> None:
        self._keys.append(np.fromiter(map(self._key, fibres), _I64, len(fibres)))
        self._checks.append(_checks(fibres))

    def build(self) -> Topology:
        """Resolve every chain once. Same answers as walking up from each fibre (see :meth:`_resolve`).

        The builder is left empty."""
        olt_of_pon = self._pon_olts()
        pon_owners = _joined(self._pon_owners)
        owners = _joined(self._owners)
        self._pon_owners, self._owners = [], []
        # the PON fibres after every output: a PON fibre is answered by its PON (the last listing it), whatever
        # lists it too
        keys, checks = [*self._keys, *self._pon_keys], [*self._checks, *self._pon_checks]
        self._keys, self._checks, self._pon_keys, self._pon_checks = [], [], [], []
        fibres = _Fibres(keys, checks)
        olt_of_splitter = self._resolve(self._inputs.unpack(), fibres, owners, pon_owners, olt_of_pon)
        self._inputs, self._splitters = _Packed(), 0
        self._slots, self._olts = [], []  # the index holds what it needs
        # the OLTs answered, each once (by identity: an answer is the very object listed), and -1 for None
        distinct = {id(olt): olt for olt in (*olt_of_splitter, *olt_of_pon) if olt is not None}
        olts = list(distinct.values())
        place_of = {key: place for place, key in enumerate(distinct)}
        place_of[id(None)] = -1
        splitter_places, pon_places = (
            np.fromiter((place_of[id(o)] for o in answers), np.int32, len(answers))
            for answers in (olt_of_splitter, olt_of_pon)
        )
        del olt_of_splitter, olt_of_pon
        places = np.concatenate([splitter_places[owners], pon_places[pon_owners]])
        del owners, pon_owners, splitter_places, pon_places
        return fibres.index(places, olts, self._key)

    def _pon_olts(self) -> list[OltView | None]:
        """The OLT of each PON's slot, in listing order (None: slot or OLT unknown). The PONs are dropped."""
        by_id = {o.id: o for o in self._olts}
        names = list(self._slot_names)
        pons = self._pon_ids.unpack()
        slot_of_pon = {pon: names[n] for pon, n in zip(pons, _joined(self._pon_slots).tolist(), strict=True)}
        self._pon_ids, self._pon_slots, self._slot_names, self._pons = _Packed(), [], {}, 0
        for slot in self._slots:
            slot_of_pon.update((pon, slot.id) for pon in slot.connectables if pon)
        olt_of_slot: dict[str, str] = {s.id: (s.olt or s.parent or "") for s in self._slots}
        for olt in self._olts:
            olt_of_slot.update((slot, olt.id) for slot in olt.connectables if slot)
        return [by_id.get(olt_of_slot.get(slot_of_pon[pon], "")) for pon in pons]

    def _resolve(
        self,
        inputs: list[str],
        fibres: _Fibres,
        owners: Ints,
        pon_owners: Ints,
        olt_of_pon: Sequence[OltView | None],
    ) -> list[OltView | None]:
        """The OLT each network splitter's output fibres lead to (``inputs``: each one's first input fibre).

        ``fibres``: the output fibres (``owners``: the splitter listing each), then the PON fibres
        (``pon_owners``: the PON listing each; ``olt_of_pon``: its OLT). Walking up from an output fibre of
        splitter S: S's first input is a PON fibre (found, 1 hop), or the output of another network splitter (the
        last listed that holds it), whose first input is looked at in turn, and so on, giving up after MAX_DEPTH
        hops. Every output fibre of S thus gets S's answer; a chain that cycles never meets a PON fibre, so
        running into the depth limit answers it as a revisit would. Each splitter's hop count is kept, so a chain
        is walked once for all the splitters on it.
        """
        # what feeds each splitter: the last entry listing its first input fibre, a PON's if any (they come
        # last), else a splitter's output. As a number: the splitter (>= 0), nothing (-1) or PON p (-2 - p).
        outputs = len(owners)
        at = np.array(fibres.last_of(inputs, self._key), _I64)
        at[np.fromiter(map(operator.not_, inputs), np.bool_, len(inputs))] = -1  # "": no input fibre
        feeds = np.full(len(inputs), -1, _I64)
        upstream = (at >= 0) & (at < outputs)
        feeds[upstream] = owners[at[upstream]]
        at_pon = at >= outputs
        feeds[at_pon] = -2 - pon_owners[at[at_pon] - outputs].astype(_I64)
        del at, upstream, at_pon
        feed = feeds.tolist()
        del feeds
        hops = [_UNKNOWN] * len(inputs)
        olt: list[OltView | None] = [None] * len(inputs)
        for start in range(len(inputs)):
            if hops[start] != _UNKNOWN:
                continue
            path = [start]
            up = feed[start]
            while True:
                if up == -1:
                    base, found = _BEYOND, None
                    break
                if up < -1:
                    base, found = 0, olt_of_pon[-2 - up]
                    break
                if hops[up] != _UNKNOWN:
                    base, found = hops[up], olt[up]
                    break
                if len(path) == MAX_DEPTH:  # the start is out of reach; the splitters above it are not, maybe
                    base, found, path = _BEYOND, None, path[:1]
                    break
                path.append(up)
                up = feed[up]
            for k, n in enumerate(path):
                distance = min(base + len(path) - k, _BEYOND)
                hops[n] = distance
                olt[n] = found if distance <= MAX_DEPTH else None
        return olt


def _joined(pages: list[Ints]) -> Ints:
    """The ``int32`` pages one after the other."""
    return np.concatenate(pages) if pages else np.zeros(0, np.int32)


class _Packed:
    """Strings packed as they come: their UTF-8 text one after the other, and the byte length of each.

    One growing buffer rather than a bytes object a page: freed page texts would leave holes in the heap."""

    def __init__(self) -> None:
        self.text = bytearray()
        self._lengths: list[Ints] = []

    def add(self, strings: Sequence[str]) -> None:
        text = "".join(strings).encode()
        self.text += text
        self._lengths.append(_utf8_lengths(strings, len(text)).astype(np.int32))

    def offsets(self) -> Ints:
        """Where each string starts in :attr:`text`, then where the last ends; the lengths are dropped."""
        every = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int32)
        self._lengths = []
        offsets: Ints = np.zeros(len(every) + 1, np.int32 if len(self.text) < 2**31 else _I64)
        np.cumsum(every, out=offsets[1:])
        return offsets

    def unpack(self) -> list[str]:
        """Every string added, in order; the packer is left empty."""
        text, cuts = self.text, self.offsets().tolist()
        self.text = bytearray()
        if text.isascii():  # characters are bytes: cut the decoded text
            decoded = text.decode()
            return [decoded[a:b] for a, b in itertools.pairwise(cuts)]
        return [text[a:b].decode() for a, b in itertools.pairwise(cuts)]


class _Fibres:
    """Fibres in listing order as their keys (``hash``) and checks (:func:`check`), sorted by key, with the
    listing position of each (``order``: a stable sort, a key's fibres in listing order)."""

    def __init__(self, keys: list[Ints], checks: list[Ints]) -> None:
        """Take the pages of ``keys`` and ``checks`` (one per fibre; the lists are emptied)."""
        joined = np.concatenate(keys) if keys else np.zeros(0, _I64)
        keys.clear()
        self.order = np.argsort(joined, kind="stable")
        self.keys = joined[self.order]
        del joined
        joined = np.concatenate(checks) if checks else np.zeros(0, np.int32)
        checks.clear()
        self.checks = joined[self.order]

    def last_of(self, wanted: Sequence[str], key: Callable[[str], int]) -> list[int]:
        """Per wanted fibre, the listing position of the last one equal to it (-1: none)."""
        keys, checks, order = self.keys, self.checks, self.order
        asked = np.fromiter(map(key, wanted), _I64, len(wanted))
        low = np.searchsorted(keys, asked, "left").tolist()
        high = np.searchsorted(keys, asked, "right").tolist()
        del asked
        found: list[int] = []
        for value, a, b in zip(_checks(wanted).tolist(), low, high, strict=True):
            at = -1
            for i in range(b - 1, a - 1, -1):  # the same key, the last listed first (the sort is stable)
                if checks[i] == value:
                    at = int(order[i])
                    break
            found.append(at)
        return found

    def index(self, places: Ints, olts: Sequence[OltView], key: Callable[[str], int]) -> Topology:
        """The :class:`Topology` where fibre ``n`` leads to ``olts[places[n]]`` (-1: nowhere, left out). A fibre
        listed more than once is answered by its last entry."""
        order, keys, checks = self.order, self.keys, self.checks
        superseded = np.zeros(len(order), np.bool_)
        # runs of one key: the same fibre listed again (the same check too), or fibres sharing a key
        same = np.flatnonzero(keys[1:] == keys[:-1]).tolist()
        run_end = -1
        for i in same:
            if i <= run_end:
                continue
            run_end = i + 1
            while run_end + 1 < len(keys) and keys[run_end + 1] == keys[i]:
                run_end += 1
            last: dict[int, int] = {}
            for j in range(i, run_end + 1):  # in listing order: the sort is stable
                value = int(checks[j])
                if (before := last.get(value)) is not None:
                    superseded[before] = True
                last[value] = j
        kept = (places[order] >= 0) & ~superseded
        del superseded
        self.order, self.keys, self.checks = np.zeros(0, _I64), np.zeros(0, _I64), np.zeros(0, np.int32)
        small: type[np.signedinteger[Any]] = np.int16 if len(olts) < 2**15 else np.int32
        answers: Ints = places[order[kept]].astype(small)
        return Topology(keys=keys[kept], checks=checks[kept], answers=answers, olts=olts, key=key)
