"""Content supervision of the codec's first RVQ levels: phonemes, Whisper teacher features, alignment.

- :mod:`codec.content.phonemes`: the espeak-ng IPA inventory of the CTC head;
- :mod:`codec.content.store`: ``ucodec content-store`` (phoneme ids and teacher features of a manifest);
- :mod:`codec.content.train`: the content losses inside the codec trainer and ``--init-from``;
- :mod:`codec.content.aligner`: ``ucodec align`` (word and phoneme times from the CTC head);
- :mod:`codec.content.cli`: the ``content-store`` and ``align`` verbs.

The heads themselves are network modules (:mod:`codec.nn.content`).
"""
