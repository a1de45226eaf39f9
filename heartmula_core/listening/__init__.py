"""Listening to songs: lyrics transcription (Whisper), CLAP text-audio scores and lyric accuracy.

The models are ``transformers`` models in Hugging Face folders (hf_models.py); the audio they hear
is any batch of waveforms, mixed to mono and resampled to each model's rate (audio_in.py).
"""
