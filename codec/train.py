"""Codec trainer: GAN training with accelerate, exact resume, atomic checkpoints, clean shutdown on signals.

One process on CPU by default; ``accelerate launch --multi_gpu --num_processes 2 -m ucodec train-codec ...`` runs
CPU DDP (``Accelerator(cpu=True)`` when no GPU; note that accelerate's ``--cpu`` flag together with
``--num_processes`` silently runs a single process). GPUs and bf16 use the same code.

Experiment directory layout::

    EXP/config.yaml          model + train config (the run's source of truth; resume reads it)
    EXP/checkpoints/step_XXXXXXX.pt   full training state (weights_only-loadable), last K kept
    EXP/metrics.csv          training losses every log_every steps
    EXP/eval.csv             dev metrics every eval_every steps
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from pathlib import Path

import torch

from codec.content.train import content_losses, open_content_store, to_device
from codec.crops import CropDataset, CropSampler, collate_content, crop_samples, load_dev_set, read_manifest_entries
from codec.losses import MultiResolutionMelLoss, discriminator_loss, feature_matching_loss, generator_adv_loss
from codec.model import Codec
from codec.nn.discriminators import Discriminators
from codec.train_config import CodecExperimentConfig
from codec.training.experiment import (
    StopFlag,
    append_csv,
    is_checkpointed,
    load_scheduler,
    lr_lambda,
    prepare_experiment_dir,
    start_fit,
    training_loader,
    write_checkpoint,
)

# Fixed CSV columns: the adversarial terms are blank before disc_start instead of changing the header mid-file.
METRIC_FIELDS = (
    "step",
    "loss",
    "mel",
    "commit",
    "adv",
    "fm",
    "disc",
    "gnorm",
    "layers",
    "dead",
    "ppl_mean",
    "ppl_min",
    "lr",
    "sec_per_step",
)
CONTENT_FIELDS = ("ctc", "distill")  # appended when the model has content heads


def codebook_perplexity(usage: torch.Tensor) -> torch.Tensor:
    """Per-layer perplexity ``[Q]`` of code usage counts ``[Q, K]`` (K = perfectly uniform use)."""
    p = usage / usage.sum(-1, keepdim=True).clamp_min(1)
    return torch.exp(-(p * p.clamp_min(1e-12).log()).sum(-1))


def freeze_parameters(model: torch.nn.Module, patterns: tuple[str, ...]) -> None:
    """Stop the parameters whose names match any shell pattern in ``patterns`` from training (``train.frozen``).

    Raises:
        ValueError: a pattern that matches no parameter (a typo would otherwise train everything silently).
    """
    from fnmatch import fnmatchcase

    names = [n for n, _ in model.named_parameters()]
    unmatched = [p for p in patterns if not any(fnmatchcase(n, p) for n in names)]
    if unmatched:
        raise ValueError(f"train.frozen: {unmatched} match no parameter of this model")
    for name, param in model.named_parameters():
        if any(fnmatchcase(name, p) for p in patterns):
            param.requires_grad_(False)


class CodecTrainer:
    """Builds models, optimisers and data from a config and runs the loop. See the module docstring."""

    def __init__(
        self,
        cfg: CodecExperimentConfig,
        train_manifest: str,
        dev_manifest: str | None,
        exp_dir: str,
        cpu: bool,
        content_dir: str | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.cfg, self.tc = cfg, cfg.train
        self.exp = Path(exp_dir)
        self.acc = Accelerator(cpu=cpu or not torch.cuda.is_available(), mixed_precision=self.tc.mixed_precision)
        torch.manual_seed(self.tc.seed)
        random.seed(self.tc.seed)
        self.model = Codec(cfg.model)
        freeze_parameters(self.model, self.tc.frozen)
        self.disc = Discriminators(self.tc.discriminator)
        self.mel_loss = MultiResolutionMelLoss(cfg.model.sample_rate, self.tc.mel_ffts, self.tc.mel_bins)
        t = self.tc
        # Fused AdamW: the per-tensor Python loop of the default CPU implementation was ~10% of a step (py-spy).
        adam = {"betas": t.betas, "weight_decay": t.weight_decay, "fused": True}
        self.opt_g = torch.optim.AdamW(self.model.parameters(), t.lr, **adam)
        self.opt_d = torch.optim.AdamW(self.disc.parameters(), t.lr_disc, **adam)

        def sched(step: int) -> float:
            return lr_lambda(step, t.warmup_steps, t.max_steps, t.lr_min_ratio)

        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, sched)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, sched)
        self.step = 0
        self.usage_ema: torch.Tensor | None = None  # [Q, K] per-step code usage EMA (dead-code detection)
        self.entries = read_manifest_entries(train_manifest)
        self.content = open_content_store(cfg, content_dir)
        self.dev = []
        if dev_manifest and self.acc.is_main_process and t.eval_every > 0:
            dev_entries = read_manifest_entries(dev_manifest)
            self.dev = load_dev_set(
                dev_entries, cfg.model.sample_rate, t.eval_utterances, t.eval_seconds, cfg.model.hop_length
            )

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        unwrap = self.acc.unwrap_model
        return {
            "step": self.step,
            "model": unwrap(self.model).state_dict(),
            "disc": unwrap(self.disc).state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "usage_ema": self.usage_ema,
            "rng_torch": torch.get_rng_state(),
            "rng_python": list(random.getstate()[1]),
            "config": self.cfg.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.disc.load_state_dict(state["disc"])
        if "opt_g" in state:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        else:  # a slim state (committed to the repo between sessions): Adam moments restart from zero
            print("warning: checkpoint has no optimizer state (slim); Adam moments restart, resume is not exact")
        load_scheduler(self.sched_g, state["sched_g"])  # the peak rates of the current config (--set train.lr*)
        load_scheduler(self.sched_d, state["sched_d"])
        self.usage_ema = state.get("usage_ema")
        torch.set_rng_state(state["rng_torch"])
        random.setstate((3, tuple(state["rng_python"]), None))
        self.step = int(state["step"])

    def save_checkpoint(self) -> Path | None:
        self.acc.wait_for_everyone()
        if not self.acc.is_main_process:
            return None
        return write_checkpoint(self.exp, self.step, self.state_dict(), self.tc.keep_checkpoints)

    # ------------------------------------------------------------------------------------------ steps
    def _sync_codebooks(self) -> int:
        """Revive dead codes from this step's usage (summed over processes) and keep ranks identical."""
        rvq = self.acc.unwrap_model(self.model).quantizer
        usage = rvq.take_usage()
        if usage is None:
            return 0
        usage = self.acc.reduce(usage, reduction="sum")
        self.usage_ema, revived = rvq.revive_dead_codes(usage, self.usage_ema)
        self._last_usage = self.usage_ema
        if self.cfg.model.quantizer.dead_code_threshold > 0 and self.acc.num_processes > 1:
            import torch.distributed as dist

            for layer in rvq.layers:
                dist.broadcast(layer.codebook.weight.data, src=0)
        return revived

    def train_step(self, batch: torch.Tensor | dict) -> dict[str, float]:
        t, w, q = self.tc, self.tc.loss_weights, self.cfg.model.quantizer
        adv_on = self.step >= t.disc_start
        wav = batch["wav"] if isinstance(batch, dict) else batch
        with self.acc.autocast():
            reference = batch.get("reference") if isinstance(batch, dict) else None
            out = self.model(wav, reference=reference)
            mel = self.mel_loss(out.audio, wav)
            vq = w.commitment * q.commitment_weight * out.commitment_loss + w.codebook * q.codebook_weight * (
                out.codebook_loss
            )
            loss = w.mel * mel + vq
            logs = {
                "mel": mel.item(),
                "commit": out.commitment_loss.item(),
                "layers": out.num_layers.float().mean().item(),
            }
            if isinstance(batch, dict) and "phonemes" in batch:
                content = content_losses(self.acc.unwrap_model(self.model).content, out.prefix, batch)
                loss = loss + w.ctc * content["ctc"] + w.distill * content["distill"]
                if "phones" in content:
                    loss = loss + w.phones * content["phones"]
                logs.update({k: v.item() for k, v in content.items()})
            if adv_on:
                logits, feats = self.disc(torch.cat([wav, out.audio]))
                n = wav.shape[0]
                adv = generator_adv_loss([lg[n:] for lg in logits], t.adversarial)
                fm = feature_matching_loss([[f[:n] for f in fs] for fs in feats], [[f[n:] for f in fs] for fs in feats])
                loss = loss + w.adversarial * adv + w.feature_matching * fm
                logs.update(adv=adv.item(), fm=fm.item())
        self.opt_g.zero_grad(set_to_none=True)
        self.acc.backward(loss)
        if t.grad_clip > 0:
            logs["gnorm"] = float(self.acc.clip_grad_norm_(self.model.parameters(), t.grad_clip))
        self.opt_g.step()
        self.sched_g.step()
        logs["dead"] = float(self._sync_codebooks())
        if adv_on:
            with self.acc.autocast():
                logits, _ = self.disc(torch.cat([wav, out.audio.detach()]))
                n = wav.shape[0]
                d_loss = discriminator_loss([lg[:n] for lg in logits], [lg[n:] for lg in logits], t.adversarial)
            self.opt_d.zero_grad(set_to_none=True)
            self.acc.backward(d_loss)
            if t.grad_clip > 0:
                self.acc.clip_grad_norm_(self.disc.parameters(), t.grad_clip)
            self.opt_d.step()
            self.sched_d.step()
            logs["disc"] = d_loss.item()
        logs["loss"] = loss.item()
        logs["lr"] = self.sched_g.get_last_lr()[0]
        return logs

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mel distance (and PESQ/STOI when the [eval] extra is installed) on the fixed dev subset."""
        model = self.acc.unwrap_model(self.model).eval()
        mels, extra = [], {}
        try:
            from codec.evaluation import metrics
        except ImportError:
            metrics = None
        pesq, stoi = [], []
        shallow: dict[str, list[float]] = {}
        for wav in self.dev:
            ref = wav[None].to(self.acc.device)
            codes = model.encode(ref)
            rec = model.decode(codes)[..., : ref.shape[-1]]  # a voice conditioner pools the voice from all levels
            mels.append(self.mel_loss(rec.float(), ref).item())
            for depth in self.tc.eval_depths:  # the first levels alone: what a TTS that gets only those right gives
                part = model.decode(codes[:, :depth], reference=codes)[..., : ref.shape[-1]]
                shallow.setdefault(f"mel_distance_{depth}", []).append(self.mel_loss(part.float(), ref).item())
                if metrics is not None:
                    with contextlib.suppress(ImportError, ValueError, AttributeError, TypeError):
                        score = metrics.stoi(ref[0, 0].cpu(), part[0, 0].cpu(), model.sample_rate)
                        shallow.setdefault(f"stoi_{depth}", []).append(score)
            if metrics is not None:
                try:
                    pesq.append(metrics.pesq_wb(ref[0, 0].cpu(), rec[0, 0].cpu(), model.sample_rate))
                    stoi.append(metrics.stoi(ref[0, 0].cpu(), rec[0, 0].cpu(), model.sample_rate))
                except (ImportError, ValueError, AttributeError, TypeError):
                    metrics = None
        model.train()
        if pesq:
            extra = {"pesq": sum(pesq) / len(pesq), "stoi": sum(stoi) / len(stoi)}
        extra.update({k: sum(v) / len(v) for k, v in shallow.items()})
        return {"mel_distance": sum(mels) / max(1, len(mels)), **extra}

    # ------------------------------------------------------------------------------------------ loop
    def _append_csv(self, name: str, row: dict, fields: tuple[str, ...] | None = None) -> None:
        append_csv(self.exp / name, row, fields)

    def fit(self, max_steps: int | None = None, resume: bool = True) -> int:
        """Train until ``max_steps`` (default: the config's) or a stop signal. Returns the final step."""
        from tqdm import tqdm

        t = self.tc
        max_steps = start_fit(self, max_steps, resume)
        self.model, self.disc, self.opt_g, self.opt_d = self.acc.prepare(self.model, self.disc, self.opt_g, self.opt_d)
        self.mel_loss.to(self.acc.device)
        mc = self.cfg.model
        crop = crop_samples(t.crop_seconds, mc.sample_rate, mc.hop_length)
        dataset = CropDataset(
            self.entries,
            mc.sample_rate,
            crop,
            t.loudness_db,
            t.gain_jitter_db,
            self.content,
            mc.hop_length,
            mc.content.teacher_subframes,
            mc.content.ctc_upsample if mc.content.frame_labels else 0,
            crop_samples(t.reference_seconds, mc.sample_rate, mc.hop_length) if mc.speaker_hidden else 0,
        )
        sampler = CropSampler(
            len(dataset), t.seed, self.acc.process_index, self.acc.num_processes, start=self.step * t.batch_size
        )
        collate = collate_content if self.content is not None else None
        loader = training_loader(
            dataset, t.seed, t.num_workers, batch_size=t.batch_size, sampler=sampler, collate_fn=collate
        )
        stop = StopFlag()
        old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(total=max_steps, initial=self.step, disable=not self.acc.is_main_process, dynamic_ncols=True)
        self.model.train()
        tic = time.time()
        try:
            fields = METRIC_FIELDS + (CONTENT_FIELDS if self.content is not None else ())
            fields += ("phones",) if self.content is not None and mc.content.frame_labels else ()
            for batch in loader:
                if self.step >= max_steps or stop.requested:
                    break
                logs = self.train_step(to_device(batch, self.acc.device))
                self.step += 1
                bar.update(1)
                bar.set_postfix(mel=f"{logs['mel']:.3f}", loss=f"{logs['loss']:.2f}")
                if self.acc.is_main_process and self.step % t.log_every == 0:
                    usage = getattr(self, "_last_usage", None)
                    if usage is not None:
                        ppl = codebook_perplexity(usage)
                        logs.update(ppl_mean=ppl.mean().item(), ppl_min=ppl.min().item())
                    logs["sec_per_step"] = (time.time() - tic) / t.log_every
                    tic = time.time()
                    row = {"step": self.step, **{k: round(v, 6) for k, v in logs.items()}}
                    self._append_csv("metrics.csv", row, fields)
                if t.eval_every and self.step % t.eval_every == 0 and self.dev:
                    ev = self.evaluate()
                    self._append_csv("eval.csv", {"step": self.step, **{k: round(v, 4) for k, v in ev.items()}})
                    bar.write(f"step {self.step}: " + ", ".join(f"{k}={v:.3f}" for k, v in ev.items()))
                if self.step % t.checkpoint_every == 0:
                    self.save_checkpoint()
        finally:
            bar.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
        if not is_checkpointed(self.exp, self.step):
            self.save_checkpoint()
        if dump := os.environ.get("UCODEC_DDP_DUMP"):  # test hook: every rank writes its final weights
            from codec.atomic import safetensors_save_atomic

            weights = self.acc.unwrap_model(self.model).state_dict()
            safetensors_save_atomic(weights, Path(dump) / f"rank{self.acc.process_index}.safetensors")
        if stop.requested:
            self.acc.print(f"stopped by signal at step {self.step}; checkpoint saved, resume with --resume")
        return self.step


def prepare_experiment(exp_dir: str, cfg: CodecExperimentConfig | None, resume: bool) -> CodecExperimentConfig:
    """Create ``exp_dir/config.yaml`` for a new run, or read it back on resume (see
    :func:`codec.training.experiment.prepare_experiment_dir`)."""
    return prepare_experiment_dir(exp_dir, cfg, resume, CodecExperimentConfig)
