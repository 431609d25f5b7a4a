"""The candidate speaker identities of the synthetic corpus, in order of preference.

An identity is an engine voice plus an optional pitch shift (cents) and tempo factor applied by sox. Recorded-voice
engines come first (each is a different human behind the diphones or the neural model), then the espeak-ng
formant variants, then pitch/tempo-shifted copies of the voices, which a speaker encoder hears as new speakers.
The recipe keeps a candidate only when its speaker-embedding centroid is far enough from every identity kept
before it (:mod:`recipes.synthetic.identity`), so near-duplicates — most espeak-ng accents, which share one formant
voice — are dropped and the report lists them.

``weight`` is the identity's share of the hours relative to the others: the slow neural engines get less, which
keeps the 10-hour build within its time budget (piper runs at about 5x real time on one core, espeak-ng at 150x).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """One synthetic speaker."""

    name: str  # speaker id in the manifests
    engine: str  # espeak | flite | festival | piper | hibari
    voice: str  # the engine's voice name
    pitch: int = 0  # pitch shift in cents (sox ``pitch``), 0 = none
    tempo: float = 1.0  # speaking-rate factor (sox ``tempo``), 1 = none
    weight: float = 1.0  # relative share of the corpus hours
    cost: float = 0.01  # CPU seconds per second of audio (measured on this project's 2-core machines)

    @property
    def shifted(self) -> bool:
        """Whether sox changes the voice (pitch or tempo)."""
        return self.pitch != 0 or self.tempo != 1.0


def _v(name: str, engine: str, voice: str, *, pitch: int = 0, tempo: float = 1.0) -> Identity:
    weight, cost = {
        "piper": (0.35, 0.22),
        "hibari": (1.0, 0.04),
        "flite": (1.0, 0.03),
        "festival": (0.6, 0.06) if voice.endswith("_hts") else (1.0, 0.01),
    }.get(engine, (1.0, 0.007))
    return Identity(name, engine, voice, pitch, tempo, weight, cost)


_BASE = [
    _v("hibari-heart", "hibari", "heart"),
    _v("piper-joe", "piper", "joe"),
    _v("flite-slt", "flite", "slt"),
    _v("flite-rms", "flite", "rms"),
    _v("flite-awb", "flite", "awb"),
    _v("flite-kal16", "flite", "kal16"),
    _v("festival-slt", "festival", "cmu_us_slt_arctic_hts"),
    _v("festival-kal", "festival", "kal_diphone"),
    _v("festival-ked", "festival", "ked_diphone"),
    _v("festival-rab", "festival", "rab_diphone"),
    _v("festival-don", "festival", "don_diphone"),
]
_MBROLA = [_v(f"mbrola-{v}", "espeak", f"mb-{v}") for v in ("us1", "us2", "us3", "en1")] + [
    _v(f"mbrola-{v}-en", "espeak", f"mb-{v}-en")
    for v in ("de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "nl2", "sw1", "sw2", "pl1", "hu1", "af1", "gr2")
    + ("ro1",)
]
_ESPEAK = [
    _v(f"espeak-{v.replace('+', '-').lower()}", "espeak", v)
    for v in ("en-us", "en-us+f3", "en-us+f5", "en-us+klatt", "en-us+Storm", "en-us+m7", "en-gb-x-rp", "en-029")
]
_SHIFTED = [
    _v("hibari-heart-low", "hibari", "heart", pitch=-350, tempo=0.95),
    _v("piper-joe-high", "piper", "joe", pitch=350),
    _v("piper-joe-low", "piper", "joe", pitch=-300, tempo=1.05),
    _v("flite-slt-low", "flite", "slt", pitch=-400, tempo=0.92),
    _v("flite-rms-high", "flite", "rms", pitch=350),
    _v("flite-awb-low", "flite", "awb", pitch=-300, tempo=0.95),
    _v("festival-slt-high", "festival", "cmu_us_slt_arctic_hts", pitch=300, tempo=1.05),
    _v("festival-kal-high", "festival", "kal_diphone", pitch=400),
    _v("festival-don-low", "festival", "don_diphone", pitch=-300),
    _v("mbrola-us1-low", "espeak", "mb-us1", pitch=-400, tempo=0.92),
    _v("mbrola-us2-high", "espeak", "mb-us2", pitch=450, tempo=1.05),
    _v("mbrola-us3-low", "espeak", "mb-us3", pitch=-300),
    _v("mbrola-en1-high", "espeak", "mb-en1", pitch=400),
    _v("espeak-en-us-f3-low", "espeak", "en-us+f3", pitch=-350),
    _v("espeak-en-us-high", "espeak", "en-us", pitch=500, tempo=0.9),
    _v("hibari-heart-high", "hibari", "heart", pitch=300, tempo=1.05),
    _v("flite-kal16-high", "flite", "kal16", pitch=350),
    _v("festival-ked-low", "festival", "ked_diphone", pitch=-350, tempo=0.95),
    _v("festival-rab-high", "festival", "rab_diphone", pitch=350),
    _v("mbrola-de1-en-low", "espeak", "mb-de1-en", pitch=-300),
    _v("mbrola-de5-en-high", "espeak", "mb-de5-en", pitch=300, tempo=1.05),
    _v("mbrola-fr1-en-low", "espeak", "mb-fr1-en", pitch=-350),
    _v("mbrola-sw1-en-high", "espeak", "mb-sw1-en", pitch=350),
    _v("mbrola-pl1-en-low", "espeak", "mb-pl1-en", pitch=-350, tempo=0.95),
    _v("mbrola-hu1-en-high", "espeak", "mb-hu1-en", pitch=300),
    _v("mbrola-de6-en-high", "espeak", "mb-de6-en", pitch=400),
    _v("espeak-en-us-klatt-low", "espeak", "en-us+klatt", pitch=-350),
]

CANDIDATES: tuple[Identity, ...] = tuple(_BASE + _MBROLA + _ESPEAK + _SHIFTED)
assert len({c.name for c in CANDIDATES}) == len(CANDIDATES), "identity names must be unique"


def candidates(engines: tuple[str, ...] | None = None, names: tuple[str, ...] | None = None) -> list[Identity]:
    """The candidates in order of preference, optionally only those of the given engines and/or names.

    Raises:
        ValueError: an engine or identity name is unknown.
    """
    from recipes.synthetic.engines import ENGINES

    unknown = sorted(set(engines or ()) - set(ENGINES))
    if unknown:
        raise ValueError(f"unknown engines {unknown}; choose from {list(ENGINES)}")
    unknown = sorted(set(names or ()) - {c.name for c in CANDIDATES})
    if unknown:
        raise ValueError(f"unknown identities {unknown}; choose from {[c.name for c in CANDIDATES]}")
    return [c for c in CANDIDATES if (engines is None or c.engine in engines) and (names is None or c.name in names)]
