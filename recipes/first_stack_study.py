"""How much of the phone recognizer's output can 4 levels of 256 codes keep at 5 Hz? (session 15 study, a research
script; results and use in docs/codec_training.md)

The first stack of a phone-input codec quantizes a projection of the frozen recognizer's stacked posteriors. In
the codec that projection and stack also serve the mel loss; here they serve only a CTC reader, so each variant's
PER is the most that quantizer design can hold. Same features, seed, steps and reader for every variant.

usage: python -m recipes.first_stack_study feats OUT.pt          # extract features (train + dev-ab)
       python -m recipes.first_stack_study run OUT.pt VARIANT...  # train and score variants
       python -m recipes.first_stack_study probe STACK.safetensors  # the codec eval's fixed probe on a saved stack

The stack that won is trained and grafted by the product commands ``ucodec train-phone-stack`` and
``ucodec train-codec --init-stack`` (:mod:`codec.content.first_stack`).
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from codec.config import ContentConfig, QuantizerConfig
from codec.content.first_stack import load_first_stack, stack_features
from codec.content.phone_model import load_phone_model
from codec.content.phonemes import CTC_SYMBOLS
from codec.manifest import read_manifest
from codec.nn.content import CtcHead, ctc_loss, error_rate, greedy_decode
from codec.nn.phone_input import PhoneInput
from codec.nn.quantizer import FactorizedRVQ

HOP = 3200
D = 256  # the latent width of configs/codec/small.yaml
UP = 8
DEV = "data/synth/dev-ab.jsonl"


def _stacked(rec, utts) -> tuple[list[torch.Tensor], list[list[int]]]:
    """Per utterance with phonemes: the recognizer's posteriors stacked per frame ``[F, s * (V + 1)]`` (fp16) and
    the phoneme ids, exactly as the codec's phone input stacks them."""
    phone_input = PhoneInput(tuple(CTC_SYMBOLS), D, HOP, 16000, "posteriors")
    phone_input.recognizer.load_state_dict(rec.state_dict())
    return stack_features(phone_input, utts, progress=False)


@torch.inference_mode()
def feats(out: str, n_train: int = 2000) -> None:
    rec = load_phone_model("models/phone-aligner")
    utts = read_manifest("data/synth/train-28h.jsonl")
    pick = torch.randperm(len(utts), generator=torch.Generator().manual_seed(0))[:n_train].tolist()
    data = {"train": _stacked(rec, [utts[i] for i in pick]), "dev": _stacked(rec, read_manifest(DEV))}
    torch.save(data, out)


def probe(stack: str) -> None:
    """The fixed-protocol probe of ``ucodec eval codec --probe-train data/synth/train.jsonl`` on a saved stack's
    levels 1 and 1-4 (its own output projections) and on its input before quantization."""
    from codec.evaluation.content import PROBE, head_per, train_probe

    state, _ = load_first_stack(stack)
    with torch.inference_mode():
        rec = load_phone_model("models/phone-aligner")
        tr = _stacked(rec, read_manifest("data/synth/train.jsonl")[: PROBE.train_utterances])
        dv = _stacked(rec, read_manifest(DEV))
    width = tr[0][0].shape[1]
    proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, D))
    proj.load_state_dict({k[len("phone_input.proj.") :]: v for k, v in state.items() if k.startswith("phone_input.")})
    n = len({k.split(".")[2] for k in state if k.startswith("quantizer.layers.")})
    q = FactorizedRVQ(QuantizerConfig(num_codebooks=n, codebook_dim=8), D).eval()
    q.load_state_dict({k[len("quantizer.") :]: v for k, v in state.items() if k.startswith("quantizer.")})

    def sums(xs, k):
        with torch.inference_mode():
            out = []
            for x in xs:
                z = proj(x.float()[None]).transpose(1, 2)
                out.append((q.decode(q.encode(z, k)) if k else z)[0].clone())
            return out

    for k in (1, n, 0):
        p = train_probe(sums(tr[0], k), tr[1], len(CTC_SYMBOLS), PROBE)
        name = f"levels 1-{k}" if k else "input before quantization"
        print(f"probe PER, {name}: {100 * head_per(sums(dv[0], k), dv[1], p, PROBE.upsample):.1f} %", flush=True)


def build(variant: str) -> FactorizedRVQ | None:
    """``rvq-N-CD``: N residual levels with lookup dimension CD; ``cont-0-0``: no quantization (the ceiling)."""
    kind, n, cd = variant.split("-")
    if kind == "cont":
        return None
    if kind != "rvq":
        raise ValueError(f"unknown variant {variant!r}")
    return FactorizedRVQ(QuantizerConfig(num_codebooks=int(n), codebook_dim=int(cd)), D)


def run(data_path: str, variant: str, steps: int = 3000, bs: int = 16) -> None:
    data = torch.load(data_path)
    xtr, ytr = data["train"]
    xdv, ydv = data["dev"]
    torch.manual_seed(0)
    width = xtr[0].shape[1]
    proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, D))
    q = build(variant)
    cfg = ContentConfig(levels=1, symbols=tuple(CTC_SYMBOLS), ctc_upsample=UP, ctc_channels=128)
    head = CtcHead(D, cfg)
    mods = nn.ModuleList([proj, head] + ([q] if q is not None else []))
    opt = torch.optim.Adam(mods.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    ema = None

    def fwd(xs, train: bool):
        frames = torch.tensor([x.shape[0] for x in xs])
        x = torch.zeros(len(xs), int(frames.max()), width)
        for i, a in enumerate(xs):
            x[i, : a.shape[0]] = a.float()
        z = proj(x).transpose(1, 2)
        extra = z.new_zeros(())
        if isinstance(q, FactorizedRVQ):
            out = q(z)
            z = out.quantized
            extra = out.commitment_loss * 0.25 + out.codebook_loss
        return head(z), frames, extra

    t0 = time.time()
    for s in range(steps):
        idx = torch.randint(len(xtr), (bs,), generator=gen).tolist()
        lp, frames, extra = fwd([xtr[i] for i in idx], True)
        loss = ctc_loss(lp, [torch.tensor(ytr[i]) for i in idx], frames, UP) + extra
        opt.zero_grad()
        loss.backward()
        opt.step()
        if q is not None:  # dead-code revival as the codec trainer does it
            usage = q.take_usage()
            if usage is not None:
                ema, _ = q.revive_dead_codes(usage, ema)
        if (s + 1) % 1000 == 0 or s + 1 == steps:
            mods.eval()
            with torch.no_grad():
                hyps = []
                for x in xdv:
                    lp, frames, _ = fwd([x], False)
                    hyps.extend(greedy_decode(lp, frames * UP))
            mods.train()
            per = 100 * error_rate(hyps, ydv)
            print(f"{variant} step {s + 1}: dev PER {per:.1f} % ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "feats":
        feats(sys.argv[2])
    elif sys.argv[1] == "probe":
        probe(sys.argv[2])
    else:
        for v in sys.argv[3:]:
            run(sys.argv[2], v)
