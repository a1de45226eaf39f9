"""Stand-in for ``comfy_api.latest._io`` (the V3 node schema), reduced to what the pack uses.

Signatures follow ComfyUI 0.3.64 to 0.38: positional parameters are a leading prefix of each
version's, and parameters whose position moved between versions (``force_input`` of Float, the
Schema flags after ``description``) are keyword-only here, as nodes pass them by name. Where versions
differ this follows 0.33: every input takes ``advanced`` (0.28+; keyword-only, since 0.3.64 has none
and nodes pass it only where the host takes it, nodes/base.advanced). So a node
written against this file builds the same schema on every real host. ``INPUT_TYPES()`` returns the same structure the server publishes in
/object_info (``required`` / ``optional`` / ``hidden`` dicts of ``(type, options)``), whose key order
is the widget order that UI workflows store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import KW_ONLY, dataclass
from enum import Enum
from typing import Any


def _prune(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


class NumberDisplay(str, Enum):
    number = "number"
    slider = "slider"


class UploadType(str, Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class Input:
    Parent = None

    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 extra_dict=None, *, advanced: bool = None):
        self.id = id
        self.display_name = display_name
        self.optional = optional
        self.tooltip = tooltip
        self.lazy = lazy
        self.extra_dict = extra_dict if extra_dict is not None else {}
        self.advanced = advanced

    @property
    def io_type(self):
        return self.Parent.io_type

    def as_dict(self):
        return _prune({"display_name": self.display_name, "optional": self.optional, "tooltip": self.tooltip,
                       "lazy": self.lazy, "advanced": self.advanced}) | _prune(self.extra_dict)

    def get_io_type(self):
        return self.io_type


class WidgetInput(Input):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: Any = None, socketless: bool = None, widget_type: str = None, force_input: bool = None,
                 extra_dict=None, *, advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, advanced=advanced)
        self.default = default
        self.socketless = socketless
        self.widget_type = widget_type
        self.force_input = force_input

    def as_dict(self):
        return super().as_dict() | _prune({"default": self.default, "socketless": self.socketless,
                                           "widgetType": self.widget_type, "forceInput": self.force_input})


class Output:
    Parent = None

    def __init__(self, id: str = None, display_name: str = None, tooltip: str = None, is_output_list=False):
        self.id = id
        self.display_name = display_name
        self.tooltip = tooltip
        self.is_output_list = is_output_list

    @property
    def io_type(self):
        return self.Parent.io_type


def _socket_type(io_type: str, input_cls=Input, output_cls=Output):
    """A socket type: a class with ``io_type`` and its own Input / Output classes bound to it."""
    cls = type(io_type, (), {"io_type": io_type})
    cls.Input = type("Input", (input_cls,), {"Parent": cls})
    cls.Output = type("Output", (output_cls,), {"Parent": cls})
    return cls


def Custom(io_type: str):
    """A socket type of the given name (what ``io.Custom("MY_TYPE")`` gives on the host)."""
    return _socket_type(io_type)


class _BooleanInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: bool = None, label_on: str = None, label_off: str = None, socketless: bool = None,
                 force_input: bool = None, *, advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                         advanced=advanced)
        self.label_on, self.label_off = label_on, label_off

    def as_dict(self):
        return super().as_dict() | _prune({"label_on": self.label_on, "label_off": self.label_off})


class _IntInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: int = None, min: int = None, max: int = None, step: int = None,
                 control_after_generate: bool = None, display_mode: NumberDisplay = None, socketless: bool = None,
                 force_input: bool = None, *, advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                         advanced=advanced)
        self.min, self.max, self.step = min, max, step
        self.control_after_generate = control_after_generate
        self.display_mode = display_mode

    def as_dict(self):
        return super().as_dict() | _prune({"min": self.min, "max": self.max, "step": self.step,
                                           "control_after_generate": self.control_after_generate,
                                           "display": self.display_mode.value if self.display_mode else None})


class _FloatInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 default: float = None, min: float = None, max: float = None, step: float = None,
                 round: float = None, display_mode: NumberDisplay = None, *, socketless: bool = None,
                 force_input: bool = None, advanced: bool = None):  # 0.28 put gradient_stops before socketless
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                         advanced=advanced)
        self.min, self.max, self.step, self.round = min, max, step, round
        self.display_mode = display_mode

    def as_dict(self):
        return super().as_dict() | _prune({"min": self.min, "max": self.max, "step": self.step,
                                           "round": self.round, "display": self.display_mode})


class _StringInput(WidgetInput):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None, lazy: bool = None,
                 multiline=False, placeholder: str = None, default: str = None, dynamic_prompts: bool = None,
                 socketless: bool = None, force_input: bool = None, *, advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                         advanced=advanced)
        self.multiline, self.placeholder, self.dynamic_prompts = multiline, placeholder, dynamic_prompts

    def as_dict(self):
        return super().as_dict() | _prune({"multiline": self.multiline, "placeholder": self.placeholder,
                                           "dynamicPrompts": self.dynamic_prompts})


class _ComboInput(WidgetInput):
    def __init__(self, id: str, options=None, display_name: str = None, optional=False, tooltip: str = None,
                 lazy: bool = None, default=None, control_after_generate: bool = None, upload: UploadType = None,
                 image_folder=None, remote=None, socketless: bool = None, *, advanced: bool = None):
        if isinstance(options, type) and issubclass(options, Enum):
            options = [v.value for v in options]
        if isinstance(default, Enum):
            default = default.value
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, advanced=advanced)
        self.multiselect = False
        self.options = options
        self.control_after_generate = control_after_generate
        self.upload = upload

    def as_dict(self):
        return super().as_dict() | _prune({"multiselect": self.multiselect, "options": self.options,
                                           "control_after_generate": self.control_after_generate,
                                           **({self.upload.value: True} if self.upload is not None else {})})


Boolean = _socket_type("BOOLEAN", _BooleanInput)
Int = _socket_type("INT", _IntInput)
Float = _socket_type("FLOAT", _FloatInput)
String = _socket_type("STRING", _StringInput)
Combo = _socket_type("COMBO", _ComboInput)
Audio = _socket_type("AUDIO")


class Hidden(str, Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"


@dataclass
class Schema:
    node_id: str
    display_name: str = None
    category: str = "sd"
    inputs: list = None
    outputs: list = None
    hidden: list = None
    description: str = ""
    _: KW_ONLY  # 0.28 put search_aliases here; the flags below are passed by name
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def validate(self):
        ins = [i.id for i in self.inputs or []]
        outs = [o.id for o in self.outputs or []]
        if len(set(ins)) != len(ins) or len(set(outs)) != len(outs) or set(ins) & set(outs):
            raise ValueError(f"{self.node_id}: input and output ids must be unique")

    def finalize(self):
        if self.is_output_node:
            self.hidden = list(self.hidden or [])
            for h in (Hidden.prompt, Hidden.extra_pnginfo):
                if h not in self.hidden:
                    self.hidden.append(h)
        for i, output in enumerate(self.outputs or []):
            if output.id is None:
                output.id = f"_{i}_{output.io_type}_"


class NodeOutput:
    def __init__(self, *args: Any, ui=None, expand=None, block_execution: str = None):
        self.args = args
        self.ui = ui
        self.expand = expand
        self.block_execution = block_execution

    @property
    def result(self):
        return self.args if len(self.args) > 0 else None

    def __getitem__(self, index):
        return self.args[index]


class ComfyNode(ABC):
    """Base of V3 nodes. The host calls ``execute`` as a classmethod with the inputs as keywords."""

    hidden = None

    @classmethod
    @abstractmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    @abstractmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def GET_SCHEMA(cls) -> Schema:
        schema = cls.define_schema()
        schema.finalize()
        schema.validate()
        return schema

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        """The ``input`` entry of this node in /object_info (key order = widget order); 0.28 and
        later take no argument, 0.3.64's defaults give the same."""
        schema = cls.GET_SCHEMA()
        info: dict = {"required": {}}
        for i in schema.inputs or []:
            opts = i.as_dict()
            opts.pop("optional", None)
            info.setdefault("optional" if i.optional else "required", {})[i.id] = (i.get_io_type(), opts)
        if schema.hidden:
            info["hidden"] = {h.name: (h.value,) for h in schema.hidden}
        return info
