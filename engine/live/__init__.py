"""Live transcription and translation: the streaming policy, the streaming recogniser, the translation
stage and the session thread that runs them over an audio source.

    policy.py      pure: LocalAgreement-2, finalisation at pauses, trimming, repetition guards
    recognizer.py  synchronous: feed(chunk) → events (VAD gate, decode steps, policy, sentences)
    translation.py a thread: finished sentences → Translated events (one encoder pass into English)
    session.py     a thread: reads the source, feeds the recogniser, routes its events
"""
