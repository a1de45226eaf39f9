"""Loader nodes of the LM and the codec, and the one way every loader node (the listening ones
too) turns a model folder into a model in a patcher (``load_model``): resolve (or download) the
folder, pick the dtype, build on the offload device, wrap. How each kind is placed is in memory.py
(the LM in a plain ModelPatcher, the codec in ComfyUI's CoreModelPatcher, the listening models
whole in a plain ModelPatcher).
"""

from __future__ import annotations

import logging
from typing import Callable

from comfy_api.latest import io

from ..heartmula_core.codec import load_codec
from ..heartmula_core.lm.load import load_lm
from . import memory, model_folders
from .base import HeartMuLaNode, schema
from .types import CodecSocket, HeartCodecModel, HeartMuLaLM, LMSocket

log = logging.getLogger(__name__)


def loader_inputs(kind: str, name: str, tooltip: str, default_dtype: str, dtype_tooltip: str, download_tooltip: str):
    placement = memory.PLACEMENTS[kind]
    return [io.Combo.Input(name, options=model_folders.choices(kind), tooltip=tooltip),
            io.Combo.Input("dtype", options=list(placement.dtypes), default=default_dtype, tooltip=dtype_tooltip),
            io.Boolean.Input("download_if_missing", default=False, tooltip=download_tooltip)]


def load_model(kind: str, name: str, dtype: str, download: bool, build: Callable, wrap: Callable = memory.wrap):
    """Resolve ``name``, then ``build(folder, dtype, offload_device)`` -> (model on the offload
    device, what else the loader returned), wrapped. Returns (patcher, folder, dtype, loaded)."""
    folder = model_folders.resolve(kind, name, download)
    load_device, offload_device = memory.PLACEMENTS[kind].devices()
    torch_dtype = memory.pick_dtype(kind, dtype, load_device)
    model, loaded = build(folder, torch_dtype, offload_device)
    patcher = wrap(model, load_device, offload_device)
    log.info("HeartMuLa: loaded %s %s as %s (%.2f GB)", kind, folder, torch_dtype, patcher.size / 1e9)
    return patcher, folder, torch_dtype, loaded


def listening_build(loader: Callable):
    """Load a transformers model on the CPU, move it to the offload device inside a HeldModel."""
    def build(folder, dtype, offload_device):
        loaded = loader(folder, dtype=dtype)
        return memory.HeldModel(loaded.model.to(offload_device)), loaded
    return build


_DOWNLOAD_TOOLTIP = (
    "Fetch the folder from the Hugging Face Hub into the first HeartMuLa model folder when it is not "
    "there yet (several GB; an LM also needs the shared tokenizer.json and gen_config.json, fetched too). "
    "Off: a missing folder stops with the exact download command."
)


class LoadHeartMuLaLM(HeartMuLaNode):
    @classmethod
    def define_schema(cls):
        return schema(
            "HeartMuLaLMLoader", "Load HeartMuLa LM",
            "Loads a HeartMuLa language model (the part that writes the song as audio tokens).",
            inputs=loader_inputs("lm", "model", "An LM folder under models/HeartMuLa (or another registered HeartMuLa "
                                          "folder). Official names not downloaded yet are listed too.",
                           "auto", "Weight and compute precision. auto = bf16 where the GPU supports it, "
                                   "else fp32. fp16 may overflow; fp32 doubles memory.", _DOWNLOAD_TOOLTIP),
            outputs=[LMSocket.Output(display_name="lm", tooltip="The LM, its tokenizer and generation config.")],
        )

    @classmethod
    def execute(cls, model: str, dtype: str, download_if_missing: bool) -> io.NodeOutput:
        def build(folder, torch_dtype, offload_device):
            loaded = load_lm(folder, device=offload_device, dtype=torch_dtype, operations=memory.layer_operations())
            return loaded.model, loaded

        patcher, folder, torch_dtype, loaded = load_model("lm", model, dtype, download_if_missing, build)
        return io.NodeOutput(HeartMuLaLM(patcher=patcher, folder=folder, dtype=torch_dtype, tokenizer=loaded.tokenizer,
                                         gen_config=loaded.gen_config, config=loaded.config))


class LoadHeartCodec(HeartMuLaNode):
    @classmethod
    def define_schema(cls):
        return schema(
            "HeartMuLaCodecLoader", "Load HeartCodec",
            "Loads HeartCodec, which turns HeartMuLa's audio tokens into a 48 kHz stereo waveform.",
            inputs=loader_inputs("codec", "codec", "A HeartCodec folder under models/HeartMuLa. Use HeartCodec-oss-20260123 "
                                             "with the 20260123 and later LMs.",
                           "fp32", "Precision of the codec's transformer (the rest stays fp32). The authors "
                                   "report audible loss below fp32.", _DOWNLOAD_TOOLTIP),
            outputs=[CodecSocket.Output(display_name="codec", tooltip="The codec.")],
        )

    @classmethod
    def execute(cls, codec: str, dtype: str, download_if_missing: bool) -> io.NodeOutput:
        def build(folder, torch_dtype, offload_device):
            model = load_codec(folder, device=offload_device, dtype=torch_dtype, operations=memory.layer_operations())
            return model, model

        patcher, folder, torch_dtype, _ = load_model("codec", codec, dtype, download_if_missing, build, memory.wrap_core)
        return io.NodeOutput(HeartCodecModel(patcher=patcher, folder=folder, dtype=torch_dtype))


NODES = [LoadHeartMuLaLM, LoadHeartCodec]
