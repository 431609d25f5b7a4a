"""The codec's network building blocks (see docs/design.md, "Where each concern lives").

- :mod:`codec.nn.conv`: streaming (causal) 1-D convolutions and their transposes;
- :mod:`codec.nn.seanet` / :mod:`codec.nn.melstft`: the SEANet and mel/iSTFT front and back ends;
- :mod:`codec.nn.transformer`: the RoPE Transformers around the 5 Hz bottleneck;
- :mod:`codec.nn.quantizer`: the factorized residual vector quantizer (32 levels of 256 codes);
- :mod:`codec.nn.streaming`: the streaming-state protocol shared by the modules above;
- :mod:`codec.nn.content`: the content heads of the first RVQ levels (phoneme CTC, Whisper distillation);
- :mod:`codec.nn.discriminators`: the GAN discriminators of training.

:class:`codec.model.Codec` assembles them; nothing here knows about files, releases or training loops.
"""
