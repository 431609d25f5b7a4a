"""An OpenAI-compatible speech server: ``POST /v1/audio/speech`` and ``GET /health`` (FastAPI, served by uvicorn).

Request (JSON, as OpenAI's ``audio.speech.create``)::

    {"model": "...", "input": "text", "voice": "default" | NAME, "response_format": "wav" | "flac" | "pcm",
     "speed": 0.25..4.0, "temperature": ..., "top_k": ..., "top_p": ..., "seed": 0}

``model`` is accepted for client compatibility (a server serves one model; its name is in ``/health`` and the
``x-ucodec-model`` header). ``voice`` names a prompt of the voices folder (see ``demo/voices.py``). ``pcm`` is raw
signed 16-bit little-endian mono at 16 kHz, streamed chunk by chunk as the model generates it; ``wav``/``flac``
are sent when complete. Every refusal is a JSON body ``{"error": {"message": ..., "type": ...}}``: 400 bad
request, 413 body too large, 503 busy (see ``demo/pool.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from demo.pool import Admission, Overloaded, WorkerPool
from demo.speech import (
    MAX_INPUT_CHARS,
    MEDIA_TYPES,
    RESPONSE_FORMATS,
    change_speed,
    check_sampling,
    check_speed,
    check_text,
    encode_audio,
    to_pcm16,
)
from demo.voices import DEFAULT_VOICE, VoiceStore
from tts.pipeline import TTS

MAX_BODY_BYTES = 64 * 1024  # 4096 characters of input are at most 16 KiB of UTF-8; the rest is JSON framing
STREAM_CHUNK_FRAMES = 1  # one 5 Hz frame (200 ms of audio) per pcm chunk: the lowest latency the model offers
log = logging.getLogger("ucodec.server")


class SpeechRequest(BaseModel):
    """The body of ``POST /v1/audio/speech``; unknown fields are refused so a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), strict=False)

    model: str | None = None  # accepted for OpenAI clients; one server serves one model
    input: str  # the text to speak (1..MAX_INPUT_CHARS characters)
    voice: str = DEFAULT_VOICE  # a stored prompt's name, or "default"
    response_format: str = "wav"  # wav | flac | pcm (OpenAI's default mp3 is not offered)
    speed: float = 1.0  # tempo factor, pitch kept
    temperature: float | None = None  # sampling overrides (None = the model's defaults)
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0  # same seed, same audio


def error(status: int, message: str, kind: str) -> JSONResponse:
    """An OpenAI-style error response."""
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid value')}"


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it exceeds ``limit`` bytes (read no further: the client may send GBs)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(tts: TTS, voices: VoiceStore | None = None, workers: int = 1, max_queue: int = 4) -> FastAPI:
    """The FastAPI application serving ``tts``.

    Args:
        tts: the model (the pool deep-copies it for ``workers > 1``).
        voices: stored prompts (None = the default voice only).
        workers: syntheses that run at once.
        max_queue: admitted requests that may wait for a worker; beyond that 503.
    """
    voices = voices or VoiceStore(None, tts.sample_rate)
    pool = WorkerPool(tts, workers=workers, max_queue=max_queue)
    name = tts.config.name
    app = FastAPI(title="ucodec speech server", version="1", docs_url="/docs", redoc_url=None)
    app.state.pool, app.state.voices = pool, voices

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return error(exc.status_code, str(exc.detail), kind)

    @app.get("/health")
    async def health() -> dict:
        return {
            "status": "ok",
            "model": name,
            "sample_rate": tts.sample_rate,
            "voices": voices.names,
            "response_formats": sorted(RESPONSE_FORMATS),
            "workers": pool.workers,
            "max_queue": pool.max_queue,
            "in_flight": pool.in_flight,
        }

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            return error(413, f"request body is larger than {MAX_BODY_BYTES} bytes", "invalid_request_error")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return error(400, f"request body is not valid JSON ({exc})", "invalid_request_error")
        if not isinstance(data, dict):
            return error(400, "request body must be a JSON object", "invalid_request_error")
        try:
            req = SpeechRequest.model_validate(data)
            text = check_text(req.input, MAX_INPUT_CHARS, "input")
            if req.response_format not in RESPONSE_FORMATS:
                raise ValueError(
                    f"response_format {req.response_format!r} is not supported; use one of {sorted(RESPONSE_FORMATS)}"
                )
            check_speed(req.speed)
            check_sampling(req.temperature, req.top_k, req.top_p)
            voice = voices.get(req.voice)
        except ValidationError as exc:
            return error(400, _validation_message(exc), "invalid_request_error")
        except ValueError as exc:
            return error(400, str(exc), "invalid_request_error")
        try:
            admission = pool.admit()
        except Overloaded as exc:
            return error(503, str(exc), "server_overloaded")
        options = dict(
            prompt_wav=voice.wav if voice else None,
            prompt_text=voice.text if voice else None,
            temperature=req.temperature,
            top_k=req.top_k,
            top_p=req.top_p,
            seed=req.seed,
        )
        headers = {"x-ucodec-model": name, "x-sample-rate": str(tts.sample_rate)}
        if req.response_format == "pcm" and req.speed == 1.0:
            return await _stream_pcm(pool, admission, text, options, headers)
        with admission:
            try:
                audio = await run_in_threadpool(_synthesize, pool, text, options, req.speed, req.response_format)
            except Overloaded as exc:
                return error(503, str(exc), "server_overloaded")
            except ValueError as exc:
                return error(400, str(exc), "invalid_request_error")
        return Response(audio, media_type=MEDIA_TYPES[req.response_format], headers=headers)

    return app


def _synthesize(pool: WorkerPool, text: str, options: dict, speed: float, response_format: str) -> bytes:
    """Blocking: wait for a worker, synthesize, change the tempo, encode."""
    with pool.worker() as tts:
        wav = tts.synthesize(text, **options)
        sample_rate = tts.sample_rate
    return encode_audio(change_speed(wav, speed), sample_rate, response_format)


def _pcm_chunks(pool: WorkerPool, admission: Admission, text: str, options: dict) -> Iterator[bytes]:
    """Raw s16le chunks as the model makes them; the worker and the admission are held until the stream ends or
    the client goes away (closing the generator runs the ``finally``)."""
    try:
        with pool.worker() as tts:
            for chunk in tts.stream(text, chunk_frames=STREAM_CHUNK_FRAMES, **options):
                yield to_pcm16(chunk)
    finally:
        admission.release()


async def _stream_pcm(
    pool: WorkerPool, admission: Admission, text: str, options: dict, headers: dict[str, str]
) -> Response:
    """Start the stream here, so that a refusal (busy, bad prompt) is still a JSON error with its status code;
    after the first chunk the status is sent and a failure can only end the stream early."""
    chunks = _pcm_chunks(pool, admission, text, options)
    try:
        first = await run_in_threadpool(next, chunks, b"")
    except Overloaded as exc:
        return error(503, str(exc), "server_overloaded")
    except ValueError as exc:
        return error(400, str(exc), "invalid_request_error")

    def rest() -> Iterator[bytes]:
        if first:
            yield first
        try:
            yield from chunks
        except Exception:  # headers are sent: log it and end the stream short
            log.exception("pcm stream failed after its first chunk")
        finally:
            chunks.close()

    return StreamingResponse(rest(), media_type=MEDIA_TYPES["pcm"], headers=headers)


def serve(
    tts: TTS,
    host: str = "127.0.0.1",
    port: int = 8000,
    voices: VoiceStore | None = None,
    workers: int = 1,
    max_queue: int = 4,
) -> None:
    """Run the server until interrupted (blocking)."""
    import uvicorn

    app = create_app(tts, voices, workers=workers, max_queue=max_queue)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
