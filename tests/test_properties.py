"""Property tests (Hypothesis): the HY flat layout is a bijection, and config parsing and the text frontend answer any
input with a result or a ``ValueError`` — never another exception.

Examples are kept few (``max_examples`` 60-100, no deadline) so the file runs in seconds on a busy 2-core machine;
the seeds are derandomised so a failure reproduces in CI.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codec.compat.hy_tokenizer import flat_dtype, flatten_codes, unflatten_codes
from codec.config import CodecConfig
from codec.configio import apply_overrides, from_dict, to_dict
from tests.conftest import TINY
from tts.config import FrontendConfig, TTSConfig
from tts.frontend import TextFrontend
from tts.normalize import normalize_text, split_sentences

FAST = settings(
    max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None
)

# ------------------------------------------------------------------------------------------------ HY layout


@st.composite
def code_grids(draw):
    """``(codes [Q, F], codebook_size)`` with values in range, including the int32 layouts (Q * K > 32767)."""
    q = draw(st.integers(1, 40))
    k = draw(st.sampled_from([2, 16, 256, 1024, 4096, 16384]))
    f = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    codes = torch.randint(0, k, (q, f), generator=torch.Generator().manual_seed(seed))
    return codes, k


@FAST
@given(code_grids())
def test_hy_flatten_unflatten_is_an_inverse(grid):
    codes, k = grid
    q, f = codes.shape
    flat = flatten_codes(codes, k)
    assert flat.shape == (q * f,) and flat.dtype == flat_dtype(q, k)
    assert int(flat.min()) >= 0 and int(flat.max()) < q * k  # every value in the flat range
    before = flat.clone()
    back = unflatten_codes(flat, q, k)
    assert torch.equal(back, codes) and back.dtype == torch.long
    assert torch.equal(flat, before)  # unflatten never modifies its input (unlike the original)
    assert torch.equal(flatten_codes(back, k), flat)


@FAST
@given(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=70), st.integers(1, 8), st.sampled_from([2, 3, 256]))
def test_unflatten_accepts_exactly_the_valid_layouts(values, q, k):
    flat = torch.tensor(values, dtype=torch.int64)
    valid = (
        len(values) > 0
        and len(values) % q == 0
        and all(i % q * k <= v < (i % q + 1) * k for i, v in enumerate(values))  # value in its own layer's range
    )
    if valid:
        codes = unflatten_codes(flat, q, k)
        assert torch.equal(flatten_codes(codes, k).long(), flat)
    else:
        with pytest.raises(ValueError):
            unflatten_codes(flat, q, k)


# ------------------------------------------------------------------------------------------------ configs

yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=10,
)
TINY_DICT = CodecConfig.load(TINY).to_dict()
SECTIONS = sorted(k for k, v in TINY_DICT.items() if isinstance(v, dict))


@st.composite
def mutated_configs(draw):
    """The tiny codec config with a few keys replaced, added or removed (a typo, a wrong type, a missing section)."""
    data = to_dict(CodecConfig.load(TINY))
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from([None, *SECTIONS]))
        node = data if section is None else data.get(section)
        if not isinstance(node, dict):
            continue
        key = draw(st.sampled_from(sorted(node)) | st.text(max_size=6))
        action = draw(st.sampled_from(["replace", "delete"]))
        if action == "delete":
            node.pop(key, None)
        else:
            node[key] = draw(yaml_values)
    return data


@FAST
@given(mutated_configs())
def test_codec_config_parsing_raises_only_value_errors(data):
    try:
        cfg = CodecConfig.from_dict(data)
    except ValueError:
        return
    assert CodecConfig.from_dict(cfg.to_dict()) == cfg  # whatever parses round-trips


@FAST
@given(st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), yaml_values, max_size=5))
def test_arbitrary_mappings_raise_only_value_errors(data):
    for cls in (CodecConfig, TTSConfig, FrontendConfig):
        try:
            from_dict(cls, data)
        except ValueError:
            pass


override_keys = st.lists(st.sampled_from([*SECTIONS, "num_layers", "d_model", "x", ""]), min_size=1, max_size=3)


@FAST
@given(st.lists(st.tuples(override_keys, st.text(max_size=12)), max_size=4))
def test_overrides_raise_only_value_errors(items):
    overrides = [".".join(keys) + "=" + raw for keys, raw in items]
    try:
        CodecConfig.from_dict(apply_overrides(TINY_DICT, overrides))
    except ValueError:
        pass


# ------------------------------------------------------------------------------------------------ text frontend

CHAR_FRONTEND = TextFrontend(FrontendConfig(kind="char"))
texts = st.text(max_size=120) | st.text(alphabet="0123456789$£€¥%.,:;!?-'\" aAbB€½²", max_size=40)


@FAST
@given(texts)
def test_normalisation_never_raises(text):
    out = normalize_text(text)
    assert isinstance(out, str) and "  " not in out
    for piece in split_sentences(text, max_chars=40):
        assert piece.strip() == piece and piece  # non-empty and stripped


@FAST
@given(texts)
def test_frontend_answers_ids_or_a_value_error(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped characters are reported with warnings, by design
        try:
            sentences = CHAR_FRONTEND.split(text)
            ids = CHAR_FRONTEND.encode_batch(sentences, normalized=True)
        except ValueError:
            return
    assert len(ids) == len(sentences) > 0
    assert all(ids_i and all(3 <= i < CHAR_FRONTEND.vocab_size for i in ids_i) for ids_i in ids)
