"""Loader nodes: an LM or codec folder from the HeartMuLa model folders -> a model in a patcher
(the LM in a plain ModelPatcher, the codec in ComfyUI's CoreModelPatcher; see nodes/memory.py)."""

from __future__ import annotations

import logging

from comfy_api.latest import io

from ..heartmula_core import checkpoints
from ..heartmula_core.codec import load_codec
from . import memory, model_folders
from .types import CATEGORY, CodecSocket, HeartCodecModel, HeartMuLaLM, LMSocket

log = logging.getLogger(__name__)

_DOWNLOAD_TOOLTIP = (
    "Fetch the folder from the Hugging Face Hub into the first HeartMuLa model folder when it is not "
    "there yet (several GB; an LM also needs the shared tokenizer.json and gen_config.json, fetched too). "
    "Off: a missing folder stops with the exact download command."
)


def _download_input() -> io.Boolean.Input:
    return io.Boolean.Input("download_if_missing", default=False, tooltip=_DOWNLOAD_TOOLTIP)


class LoadHeartMuLaLM(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="HeartMuLaLMLoader",
            display_name="Load HeartMuLa LM",
            category=CATEGORY,
            description="Loads a HeartMuLa language model (the part that writes the song as audio tokens).",
            inputs=[
                io.Combo.Input("model", options=model_folders.choices("lm"),
                               tooltip="An LM folder under models/HeartMuLa (or another registered HeartMuLa "
                                       "folder). Official names not downloaded yet are listed too."),
                io.Combo.Input("dtype", options=memory.DTYPE_CHOICES, default="auto",
                               tooltip="Weight and compute precision. auto = bf16 where the GPU supports it, "
                                       "else fp32. fp16 may overflow; fp32 doubles memory."),
                _download_input(),
            ],
            outputs=[LMSocket.Output(display_name="lm", tooltip="The LM, its tokenizer and generation config.")],
        )

    @classmethod
    def execute(cls, model: str, dtype: str, download_if_missing: bool) -> io.NodeOutput:
        folder = model_folders.resolve("lm", model, download_if_missing)
        load_device, offload_device = memory.lm_devices()
        torch_dtype = memory.pick_dtype(dtype, load_device)
        loaded = checkpoints.load_lm(folder, device=offload_device, dtype=torch_dtype,
                                     operations=memory.layer_operations())
        patcher = memory.wrap(loaded.model, load_device, offload_device)
        log.info("HeartMuLa: loaded LM %s as %s (%.2f GB)", folder, torch_dtype, patcher.size / 1e9)
        return io.NodeOutput(HeartMuLaLM(patcher, loaded.tokenizer, loaded.gen_config, loaded.config,
                                         folder, torch_dtype))


CODEC_DTYPES = ["fp32", "bf16", "fp16"]


class LoadHeartCodec(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="HeartMuLaCodecLoader",
            display_name="Load HeartCodec",
            category=CATEGORY,
            description="Loads HeartCodec, which turns HeartMuLa's audio tokens into a 48 kHz stereo waveform.",
            inputs=[
                io.Combo.Input("codec", options=model_folders.choices("codec"),
                               tooltip="A HeartCodec folder under models/HeartMuLa. Use HeartCodec-oss-20260123 "
                                       "with the 20260123 and later LMs."),
                io.Combo.Input("dtype", options=CODEC_DTYPES, default="fp32",
                               tooltip="Precision of the codec's transformer (the rest stays fp32). The authors "
                                       "report audible loss below fp32."),
                _download_input(),
            ],
            outputs=[CodecSocket.Output(display_name="codec", tooltip="The codec.")],
        )

    @classmethod
    def execute(cls, codec: str, dtype: str, download_if_missing: bool) -> io.NodeOutput:
        folder = model_folders.resolve("codec", codec, download_if_missing)
        load_device, offload_device = memory.codec_devices()
        torch_dtype = memory.pick_dtype(dtype, load_device, CODEC_DTYPES)
        model = load_codec(folder, device=offload_device, dtype=torch_dtype, operations=memory.layer_operations())
        patcher = memory.wrap_core(model, load_device, offload_device)
        log.info("HeartMuLa: loaded codec %s as %s (%.2f GB)", folder, torch_dtype, patcher.size / 1e9)
        return io.NodeOutput(HeartCodecModel(patcher, folder, torch_dtype))


NODES = [LoadHeartMuLaLM, LoadHeartCodec]
