"""Tiny Whisper and CLAP checkpoints in Hugging Face format, built offline for the listening tests.

The Whisper decoder is wired so that its output is known exactly: every decoder block's residual
branches are zeroed and positions are ignored, so the next token depends only on the current token,
and the output projection maps each token of a fixed chain to its successor. Whatever it hears, it
says the language token for English after start-of-transcript, then the word " music" (one byte-level
token per letter) and end-of-text; with timestamps it says <|0.00|> music <|1.00|>.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

WHISPER_WORD = " music"
WHISPER_LANGS = ("en", "zh", "ja")


def _byte_alphabet() -> list[str]:
    return sorted(pre_tokenizers.ByteLevel.alphabet())


def whisper_vocab() -> tuple[dict[str, int], list[str], list[str]]:
    """(vocab, special tokens, timestamp tokens); ids are assigned in that order."""
    vocab = {ch: i for i, ch in enumerate(_byte_alphabet())}
    specials = ["<|endoftext|>", "<|startoftranscript|>"]
    specials += [f"<|{code}|>" for code in WHISPER_LANGS]
    specials += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>"]
    specials += ["<|notimestamps|>"]
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    for token in specials + stamps:
        vocab[token] = len(vocab)
    return vocab, specials, stamps


def build_tiny_whisper(folder: Path) -> Path:
    """Save a 1-layer Whisper (d_model 64) whose transcription is always ' music'."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    folder = Path(folder)
    vocab, specials, stamps = whisper_vocab()
    ids = vocab.__getitem__
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")

    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = WhisperTokenizerFast(
        tokenizer_object=backend,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
    )
    tokenizer.add_tokens(stamps)
    assert tokenizer.convert_tokens_to_ids("<|0.00|>") == ids("<|0.00|>")

    d_model = 64
    config = WhisperConfig(
        vocab_size=len(vocab),
        num_mel_bins=80,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        d_model=d_model,
        max_source_positions=1500,
        max_target_positions=64,
        decoder_start_token_id=sot,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()

    letters = [vocab[ch] for ch in _byte_level(WHISPER_WORD)]
    chain = {sot: ids("<|en|>"), ids("<|notimestamps|>"): letters[0]}
    chain.update(zip(letters[:-1], letters[1:]))
    # with timestamps: <|transcribe|> -> <|0.00|> -> letters... -> <|1.00|> -> <|endoftext|>
    chain[ids("<|transcribe|>")] = ids("<|0.00|>")
    chain[ids("<|0.00|>")] = letters[0]
    timed_end = ids("<|1.00|>")
    _wire_decoder_chain(model, chain, timed_end_after=letters[-1], timed_end=timed_end, eot=eot)

    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=64,
        is_multilingual=True,
        lang_to_id={f"<|{c}|>": ids(f"<|{c}|>") for c in WHISPER_LANGS},
        task_to_id={"translate": ids("<|translate|>"), "transcribe": ids("<|transcribe|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
        alignment_heads=[[0, 0]],
    )
    model.save_pretrained(str(folder))
    # saved one by one (not through WhisperProcessor), which every transformers version accepts
    WhisperFeatureExtractor(feature_size=80).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _byte_level(text: str) -> list[str]:
    """The byte-level characters GPT-2 style tokenizers use for ``text`` (space -> 'Ġ')."""
    return [tok for tok, _ in pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text)][0]


@torch.no_grad()
def _wire_decoder_chain(model, chain: dict[int, int], timed_end_after: int, timed_end: int, eot: int) -> None:
    """Make the decoder a lookup table: next token = chain[current token].

    Zeroed attention/MLP outputs and positions leave the last hidden state equal to
    LayerNorm(embedding of the current token); each chain token gets a one-hot embedding, and the
    output row of its successor is that normalised vector, scaled so the successor wins by far.
    """
    decoder = model.model.decoder
    for layer in decoder.layers:
        for proj in (layer.self_attn.out_proj, layer.encoder_attn.out_proj, layer.fc2):
            proj.weight.zero_()
            if proj.bias is not None:
                proj.bias.zero_()
    decoder.embed_positions.weight.zero_()
    decoder.layer_norm.weight.fill_(1.0)
    decoder.layer_norm.bias.zero_()
    embed = decoder.embed_tokens.weight
    embed.zero_()
    head = model.proj_out.weight
    head.zero_()
    sources = sorted(set(chain) | {timed_end, timed_end_after})
    for dim, token in enumerate(sources):
        embed[token, dim] = 1.0
    normalised = torch.nn.functional.layer_norm(embed[sources], (embed.shape[1],), eps=decoder.layer_norm.eps)
    rows = dict(zip(sources, normalised))
    for token, successor in chain.items():
        head[successor] += 20.0 * rows[token]
    # the last letter is followed by <|1.00|>, then end-of-text; without timestamps, timestamp tokens
    # are suppressed and the runner-up <|endoftext|> comes right after the last letter
    head[timed_end] += 20.0 * rows[timed_end_after]
    head[eot] += 10.0 * rows[timed_end_after]
    head[eot] += 20.0 * rows[timed_end]


CLAP_RATE = 8000  # the tiny CLAP hears 1 s windows at 8 kHz


def build_tiny_clap(folder: Path, fusion: bool = False) -> Path:
    """Save a random-weight CLAP (2-stage HTSAT, 1-layer RoBERTa, 16-d embeddings) with its processor."""
    from tokenizers import processors
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        RobertaTokenizerFast,
    )

    folder = Path(folder)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in _byte_alphabet():
        vocab[ch] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = RobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=60,
    )

    text_config = ClapTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    audio_config = ClapAudioConfig(
        window_size=4,
        num_mel_bins=16,
        spec_size=64,
        patch_size=4,
        patch_stride=(4, 4),
        depths=[1, 1],
        num_attention_heads=[2, 2],
        hidden_size=32,
        patch_embeds_hidden_size=16,
        enable_fusion=fusion,
        fusion_type="aff_2d" if fusion else None,
        num_hidden_layers=2,
    )
    config = ClapConfig(text_config=text_config.to_dict(), audio_config=audio_config.to_dict(), projection_dim=16)
    torch.manual_seed(1)
    model = ClapModel(config).eval()
    model.save_pretrained(str(folder))
    extractor = ClapFeatureExtractor(
        feature_size=16,
        sampling_rate=CLAP_RATE,
        hop_length=80,
        max_length_s=1,
        fft_window_size=256,
        frequency_max=4000,
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
    )
    extractor.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def install_for_host(models_dir: Path) -> None:
    """Put the tiny listening models where the example workflows look for the official ones:
    models/HeartMuLa/HeartTranscriptor-oss and models/CLAP/larger_clap_music."""
    models_dir = Path(models_dir)
    whisper = models_dir / "HeartMuLa" / "HeartTranscriptor-oss"
    clap = models_dir / "CLAP" / "larger_clap_music"
    if not (whisper / "config.json").is_file():
        build_tiny_whisper(whisper)
    if not (clap / "config.json").is_file():
        build_tiny_clap(clap)
