"""TTS trainer: the global-local LM on a token store, with accelerate, exact resume and atomic checkpoints.

One process on CPU by default; ``accelerate launch --multi_gpu --num_processes 2 -m ucodec train-tts ...`` runs
CPU DDP (``Accelerator(cpu=True)`` when there is no GPU), and GPUs with ``train.mixed_precision=bf16`` use the
same code. The experiment directory (:mod:`codec.training.experiment`) holds::

    EXP/config.yaml          model + train config
    EXP/frontend.json        the text symbol table the run uses (+ sentencepiece.model); export copies it
    EXP/text_ids-*.json      the corpus text turned into ids once (keyed by the symbol table)
    EXP/checkpoints/step_XXXXXXX.pt   training states (model, optimiser, scheduler, RNG, codec id), last K kept
    EXP/metrics.csv, EXP/eval.csv     training and dev metrics (fixed columns)
    EXP/samples/step_XXXXXXX/         dev sentences synthesized at each evaluation

A store made by another codec than ``train.codec`` is refused (:class:`codec.store.reader.TokenStore`), and so is
a resume whose codec differs from the checkpoint's. ``ucodec export-tts`` turns a checkpoint into a release.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import warnings
from functools import partial
from pathlib import Path

import torch

from codec.model import Codec
from codec.store.reader import TokenStore
from codec.training import experiment
from tts.aligned_text import FrameTextLayout, load_word_times
from tts.batch import collate
from tts.config import IGNORE_INDEX, codec_mismatches
from tts.frontend import FRONTEND_FILE, TextFrontend
from tts.model import LMOutput, TTSModel, keep_first_levels
from tts.train_config import TTSExperimentConfig
from tts.train_data import StepBatchSampler, TTSTrainData, encode_texts, fixed_batches

BAND_FIELDS = ("loss_lo", "loss_mid", "loss_hi", "acc_lo", "acc_mid", "acc_hi")  # TTSConfig.level_bands
METRIC_FIELDS = (
    "step", "loss", "speech", "text", "layer0", "fine", "acc0", "gnorm", "lr", "batch", "frames", "tokens",
    "sec_per_step", *BAND_FIELDS, "advance", "acc_adv",
)  # fmt: skip
EVAL_FIELDS = (
    "step", "dev_loss", "dev_speech", "dev_layer0", "dev_acc0", "samples_wer", "samples_end",
    *(f"dev_{f}" for f in BAND_FIELDS), "dev_advance", "dev_acc_adv",
)  # fmt: skip
LLAMA_TENSORS = ("_proj.weight", "layernorm.weight", "norm.weight")  # what load_llama_backbone reads


def prepare_tts_experiment(exp_dir: str, cfg: TTSExperimentConfig | None, resume: bool) -> TTSExperimentConfig:
    """Create ``exp_dir/config.yaml`` for a new run, or read it back on resume (refuses a changed model)."""
    return experiment.prepare_experiment_dir(exp_dir, cfg, resume, TTSExperimentConfig)


def warm_start_global(model: TTSModel, model_dir: str | os.PathLike) -> list[str]:
    """Copy a local Llama/Qwen-style decoder into the global model (widths, heads and depth must match the
    ``global_model`` config; a deeper checkpoint gives its first layers). Returns the checkpoint tensors that were
    not used (embeddings, LM head, attention biases, extra layers)."""
    from safetensors import safe_open

    from tts.llama import load_llama_backbone

    load_llama_backbone(model.global_model, model_dir)
    names: list[str] = []
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            names += list(fh.keys())
    depth = model.config.global_model.num_layers
    unused = [n for n in names if not n.endswith(LLAMA_TENSORS) or _layer(n) >= depth]
    if any(n.endswith(("q_proj.bias", "k_proj.bias", "v_proj.bias")) for n in unused):
        warnings.warn(
            f"{model_dir}: attention biases (Qwen-style) have no place in our global model and are dropped",
            stacklevel=2,
        )
    return unused


def _layer(name: str) -> int:
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else -1


class TTSTrainer:
    """Builds the model, optimiser and data from a config and runs the loop. See the module docstring.

    Args:
        cfg: the experiment config (from :func:`prepare_tts_experiment`).
        store_dir: training token store.
        dev_store_dir: dev token store for the periodic dev loss and samples (optional).
        exp_dir: experiment directory.
        cpu: force the CPU even when a GPU is present.
    """

    def __init__(
        self, cfg: TTSExperimentConfig, store_dir: str, dev_store_dir: str | None, exp_dir: str, cpu: bool = False
    ) -> None:
        from accelerate import Accelerator, DistributedDataParallelKwargs

        self.cfg, self.tc, mc = cfg, cfg.train, cfg.model
        self.exp = Path(exp_dir)
        # Without a text loss the text head gets no gradient, which DDP must be told about.
        ddp = DistributedDataParallelKwargs(find_unused_parameters=mc.text_loss_weight == 0)
        self.acc = Accelerator(
            cpu=cpu or not torch.cuda.is_available(), mixed_precision=self.tc.mixed_precision, kwargs_handlers=[ddp]
        )
        torch.manual_seed(self.tc.seed)
        random.seed(self.tc.seed)
        self.codec = Codec.from_pretrained(self.tc.codec)
        mismatch = codec_mismatches(mc, self.codec)
        if mismatch:
            name, mine, theirs = mismatch[0]
            raise ValueError(f"model.{name}={mine}, but the codec {self.tc.codec} has {theirs}")
        codec_levels = self.codec.config.content.levels
        if codec_levels and mc.content_levels != codec_levels:
            self.acc.print(
                f"note: the codec's first {codec_levels} levels carry the content (its content.levels), the TTS "
                f"weights {mc.content_levels}: set model.content_levels={codec_levels} (and model.content_loss_weight) "
                "to put the loss where the words are"
            )
        self.store = TokenStore(store_dir, codec=self.codec)  # refuses a store of another codec
        dev_store = TokenStore(dev_store_dir, codec=self.codec) if dev_store_dir else None
        self.model = TTSModel(mc)
        base_frontend = self._init_from_release() if self.tc.init_from else None
        with self.acc.main_process_first():  # rank 0 writes the frontend table and the text cache, the others read
            self.frontend = self._frontend(base_frontend)
            texts = [e.text for e in self.store.entries] + [e.text for e in (dev_store.entries if dev_store else [])]
            text_ids = encode_texts(self.frontend, texts, self.exp)  # the other ranks find everything cached
        if self.frontend.vocab_size > mc.text_vocab_size:
            raise ValueError(f"the frontend has {self.frontend.vocab_size} symbols, model.text_vocab_size is smaller")
        t, rate = self.tc, self.store.frame_rate
        frames = (max(1, int(t.min_seconds * rate)), int(t.max_seconds * rate))
        space = self.frontend.ids.get(" ")
        layout, starts = self._aligned_text(space)
        # train and dev batches: the model's END id, RoPE layout and aligned text (a picklable partial, for workers)
        self.collate = partial(collate, end_id=mc.end_id, frame_stride=mc.frame_position_stride, layout=layout)
        levels = mc.num_codebooks  # the store's first levels (all of them, or those of a model of fewer)
        self.data = TTSTrainData(
            self.store, text_ids, t.prompt, *frames, space_id=space, word_starts=starts, levels=levels
        )
        self.dev, self.dev_batches = None, []
        if dev_store is not None and self.acc.is_main_process and t.eval_every > 0:
            self.dev = TTSTrainData(
                dev_store, text_ids, t.prompt, *frames, space_id=space, word_starts=starts, levels=levels
            )
            self.dev_batches = fixed_batches(self.dev, t.max_tokens, t.eval_batches, t.seed)
        if t.init_global:
            unused = warm_start_global(self.model, t.init_global)
            self.acc.print(f"global model warm-started from {t.init_global} ({len(unused)} tensors unused)")
        decay = [p for n, p in self.model.named_parameters() if p.dim() >= 2 and "emb" not in n]
        rest = [p for n, p in self.model.named_parameters() if not (p.dim() >= 2 and "emb" not in n)]
        groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        self.opt = torch.optim.AdamW(groups, t.lr, betas=t.betas, fused=True)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt,
            partial(experiment.lr_lambda, warmup=t.warmup_steps, max_steps=t.max_steps, min_ratio=t.lr_min_ratio),
        )
        self.step = self._saved_step = 0

    def _init_from_release(self) -> TextFrontend:
        """Load the weights of the release being fine-tuned (a resume then overrides them); returns its frontend.

        With ``train.codec`` set to another codec than the release's (``--init-from REL --codec NEW``) this is a warm
        start: the text side and the attention layers carry over, while the speech-token embeddings and heads, which
        meant the old codec's codes, are relearned from the new store. The model shapes must still match.
        """
        from codec.release import load_release, load_weights
        from tts.config import FORMAT_VERSION

        rel = load_release(self.tc.init_from, "tts", FORMAT_VERSION)
        relearn = tuple(self.tc.relearn)
        group, mine = rel.config.get("local_levels_per_step", 1), self.cfg.model.local_levels_per_step
        if group != mine and "local." not in relearn:
            relearn += ("local.",)
            self.acc.print(
                f"warm start: {self.tc.init_from} predicts {group} layer(s) a local step, this model {mine}: "
                "its local model is relearned"
            )
        theirs = rel.config.get("num_codebooks", self.cfg.model.num_codebooks)
        if theirs > self.cfg.model.num_codebooks:  # a model of the codec's first levels, from one of more
            rel = dataclasses.replace(rel, state_dict=keep_first_levels(rel.state_dict, self.model, relearn))
            self.acc.print(
                f"warm start: {self.tc.init_from} models {theirs} levels, this model the first "
                f"{self.cfg.model.num_codebooks}: their embeddings and heads are kept, the others dropped"
            )
        # a clear ValueError if the model config does not fit the release's weights; aligned text may be new
        load_weights(self.model, rel, new_modules=("pointer.",), relearn=relearn)
        trained_on = (rel.meta.get("codec") or {}).get("release_id")
        if trained_on is not None and trained_on != self.codec.release_id:
            self.acc.print(
                f"warm start: {self.tc.init_from} was trained on codec {trained_on}, this run uses "
                f"{self.codec.release_id}; its speech-token embeddings and heads will be relearned"
            )
        return TextFrontend.load(rel.path, self.cfg.model.frontend)

    def _aligned_text(self, space_id: int | None) -> tuple[FrameTextLayout | None, dict | None]:
        """Batch layout of aligned text (``model.aligned_text``, else None) and the word start times of
        ``train.word_times`` (None when not given). Given times also restrict the data to the utterances they
        time, for a plain model too, so that a plain and an aligned run can train on the same utterances."""
        mc, t = self.cfg.model, self.tc
        if mc.aligned_text and not t.word_times:
            raise ValueError("model.aligned_text needs word times: train.word_times (made with `ucodec align`)")
        if not t.word_times:
            return None, None
        starts, dropped = load_word_times(t.word_times, t.min_word_match)
        self.acc.print(f"word times of {len(starts)} utterances ({dropped} below train.min_word_match)")
        layout = FrameTextLayout(space_id, mc.frame_rate, mc.advance_classes) if mc.aligned_text else None
        return layout, starts

    def _frontend(self, base: TextFrontend | None) -> TextFrontend:
        """The run's frontend: the one stored in the experiment, else the base release's, else a new one."""
        fc = self.cfg.model.frontend
        if (self.exp / FRONTEND_FILE).is_file():
            return TextFrontend.load(self.exp, fc)
        if base is not None:
            frontend = base
        elif fc.kind == "sentencepiece":
            frontend = TextFrontend.train_sentencepiece(sorted({e.text for e in self.store.entries}), fc)
        else:
            frontend = TextFrontend(fc)
        if self.acc.is_main_process:
            frontend.save(self.exp)
        return frontend

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "model": self.acc.unwrap_model(self.model).state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_python": list(random.getstate()[1]),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "codec_release_id": self.codec.release_id,
            "codec_tokens_id": self.codec.tokens_id(),
            "config": self.cfg.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("codec_release_id") != self.codec.release_id:
            raise ValueError(
                f"{self.exp}: the run was trained with codec {state.get('codec_release_id')}, but train.codec is "
                f"{self.codec.release_id}; resume with the same codec or start a new --out"
            )
        self.acc.unwrap_model(self.model).load_state_dict(state["model"])  # fp16 weights (slim) are upcast
        if "opt" in state:
            self.opt.load_state_dict(state["opt"])
        else:  # a slim state (committed to the repo between sessions): AdamW moments restart from zero
            print("warning: checkpoint has no optimizer state (slim); AdamW moments restart, resume is not exact")
        experiment.load_scheduler(self.sched, state["sched"])  # the peak rate of the current config (--set train.lr)
        torch.set_rng_state(state["rng_torch"])
        random.setstate((3, tuple(state["rng_python"]), None))
        if state.get("rng_cuda") and torch.cuda.is_available() and len(state["rng_cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.step = self._saved_step = int(state["step"])

    def save_checkpoint(self) -> Path | None:
        self.acc.wait_for_everyone()
        self._saved_step = self.step
        if not self.acc.is_main_process:
            return None
        return experiment.write_checkpoint(self.exp, self.step, self.state_dict(), self.tc.keep_checkpoints)

    # ------------------------------------------------------------------------------------------ steps
    def _stats(self, out: LMOutput) -> dict[str, float]:
        fine = out.layer_loss[1:]
        stats = {
            "loss": out.loss.item(),
            "speech": out.speech_loss.item(),
            "text": out.text_loss.item(),
            "layer0": out.layer_loss[0].item(),
            "fine": fine[~fine.isnan()].mean().item() if fine.numel() else float("nan"),
            "acc0": (out.layer_hits[0] / out.layer_count[0].clamp_min(1)).item(),
        }
        summed_loss = out.layer_loss.nan_to_num() * out.layer_count  # per-layer token loss sums
        for band, (lo, hi) in self.cfg.model.level_bands.items():
            n = out.layer_count[lo:hi].sum()
            stats[f"loss_{band}"] = (summed_loss[lo:hi].sum() / n).item() if n > 0 else float("nan")
            stats[f"acc_{band}"] = (out.layer_hits[lo:hi].sum() / n).item() if n > 0 else float("nan")
        if out.advance_loss is not None:
            stats["advance"] = out.advance_loss.item()
            stats["acc_adv"] = (out.advance_hits / out.advance_count.clamp_min(1)).item()
        return stats

    def train_step(self, batch) -> dict[str, float]:
        """One optimisation step on a :class:`tts.batch.TTSBatch`; returns its metrics."""
        with self.acc.autocast():
            out = self.model(batch)
        self.opt.zero_grad(set_to_none=True)
        self.acc.backward(out.loss)
        logs = self._stats(out)
        if self.tc.grad_clip > 0:
            logs["gnorm"] = float(self.acc.clip_grad_norm_(self.model.parameters(), self.tc.grad_clip))
        self.opt.step()
        self.sched.step()
        frames = int((batch.speech_targets[:, 0] != IGNORE_INDEX).sum())
        logs.update(lr=self.sched.get_last_lr()[0], batch=batch.tokens.shape[0], frames=frames)
        logs["tokens"] = int(batch.lengths.sum())
        return logs

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Dev loss on the fixed dev batches (frame-weighted), plus the dev samples when configured."""
        model = self.acc.unwrap_model(self.model).eval()
        keys = ("dev_loss", "dev_speech", "dev_layer0", "dev_acc0", *(f"dev_{f}" for f in BAND_FIELDS))
        if self.cfg.model.aligned_text:
            keys += ("dev_advance", "dev_acc_adv")
        totals, weight = dict.fromkeys(keys, 0.0), 0
        for keys in self.dev_batches:
            batch = self.collate([self.dev[k] for k in keys]).to(self.acc.device)
            with self.acc.autocast():
                stats = self._stats(model(batch))
            n = int((batch.speech_targets[:, 0] != IGNORE_INDEX).sum())
            for key in totals:
                totals[key] += stats[key.removeprefix("dev_")] * n
            weight += n
        logs = {k: round(v / max(1, weight), 6) for k, v in totals.items()}
        if self.tc.eval_samples > 0:
            from tts.train_samples import dev_samples

            res = dev_samples(
                model, self.codec.to(self.acc.device), self.dev, self.tc.eval_samples,
                self.exp / "samples" / f"step_{self.step:07d}", seed=self.tc.seed, score=self.tc.eval_wer,
            )  # fmt: skip
            logs["samples_end"] = res.end_rate
            if res.wer is not None:
                logs["samples_wer"] = res.wer
        model.train()
        return logs

    # ------------------------------------------------------------------------------------------ loop
    def fit(self, max_steps: int | None = None, resume: bool = True) -> int:
        """Train until ``max_steps`` (default: the config's) or a stop signal. Returns the final step."""
        from tqdm import tqdm

        t = self.tc
        max_steps = experiment.start_fit(self, max_steps, resume)
        self.model, self.opt = self.acc.prepare(self.model, self.opt)
        acc = self.acc
        sampler = StepBatchSampler(
            self.data.lengths, t.max_tokens, t.max_batch_size, t.num_buckets, t.seed,
            acc.process_index, acc.num_processes, start_step=self.step,
        )  # fmt: skip
        loader = experiment.training_loader(
            self.data, t.seed, t.num_workers, batch_sampler=sampler, collate_fn=self.collate
        )
        bar = tqdm(total=max_steps, initial=self.step, disable=not acc.is_main_process, dynamic_ncols=True)
        self.model.train()
        sums: dict[str, float] = {}
        window, tic = 0, time.time()
        with experiment.StopFlag().installed() as stop:
            try:
                for batch in loader:
                    if self.step >= max_steps or stop.requested:
                        break
                    logs = self.train_step(batch.to(acc.device))
                    self.step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{logs['loss']:.3f}", acc0=f"{logs['acc0']:.2f}")
                    for key, value in logs.items():
                        sums[key] = sums.get(key, 0.0) + value
                    window += 1  # fewer than log_every in the first window after a resume between two rows
                    if acc.is_main_process and self.step % t.log_every == 0:
                        row = {k: round(v / window, 6) for k, v in sums.items()}
                        row.update(step=self.step, sec_per_step=round((time.time() - tic) / window, 4))
                        experiment.append_csv(self.exp / "metrics.csv", row, METRIC_FIELDS)
                        sums, window, tic = {}, 0, time.time()
                    elif self.step % t.log_every == 0:
                        sums, window = {}, 0
                    if t.eval_every and self.step % t.eval_every == 0 and self.dev_batches:
                        ev = self.evaluate()
                        experiment.append_csv(self.exp / "eval.csv", {"step": self.step, **ev}, EVAL_FIELDS)
                        bar.write(f"step {self.step}: " + ", ".join(f"{k}={v:.3f}" for k, v in ev.items()))
                    if self.step % t.checkpoint_every == 0:
                        self.save_checkpoint()
            finally:
                bar.close()
        if self.step != self._saved_step:
            self.save_checkpoint()
        if dump := os.environ.get("UCODEC_DDP_DUMP"):  # test hook: every rank writes its final weights
            from codec.atomic import safetensors_save_atomic

            weights = acc.unwrap_model(self.model).state_dict()
            safetensors_save_atomic(weights, Path(dump) / f"rank{acc.process_index}.safetensors")
        if stop.requested:
            acc.print(f"stopped by signal at step {self.step}; checkpoint saved, resume with --resume")
        return self.step
