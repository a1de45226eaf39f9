"""LM sizes the benchmarks run: tiny (the reference checkpoint's dims), medium, and the real 3B."""

from heartmula_core.lm.config import FLAVORS, HeartMuLaConfig, LlamaConfig

TINY = HeartMuLaConfig(
    backbone=LlamaConfig(num_layers=2, num_heads=4, num_kv_heads=2, embed_dim=64, intermediate_dim=128, max_seq_len=2048),
    decoder=LlamaConfig(num_layers=1, num_heads=2, num_kv_heads=1, embed_dim=32, intermediate_dim=64, max_seq_len=64),
    text_vocab_size=300, audio_vocab_size=69,
)
MEDIUM = HeartMuLaConfig(
    backbone=LlamaConfig(num_layers=6, num_heads=8, num_kv_heads=4, embed_dim=512, intermediate_dim=1408, max_seq_len=8192),
    decoder=LlamaConfig(num_layers=2, num_heads=4, num_kv_heads=2, embed_dim=512, intermediate_dim=1408, max_seq_len=2048),
    text_vocab_size=300, audio_vocab_size=1029,
)
REAL_3B = HeartMuLaConfig(backbone=FLAVORS["llama-3B"], decoder=FLAVORS["llama-300M"])

SIZES = {"tiny": TINY, "medium": MEDIUM, "3B": REAL_3B}
