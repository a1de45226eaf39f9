"""Error types users see. Each message names the file or input at fault and what to do."""


class HeartMuLaError(Exception):
    """Base class of every error this library raises on purpose (bad input, bad files)."""


class CheckpointError(HeartMuLaError):
    """A checkpoint folder or weight file is missing, malformed or does not fit the model."""


class PromptError(HeartMuLaError):
    """Tags or lyrics cannot be turned into a prompt (empty, too long for the context)."""


class SettingsError(PromptError):
    """A sampling or decoding setting is out of range (NaN, infinite, zero steps, a seed past 2**64-1).
    A PromptError too, as the sampling settings were before this class existed."""


class CodesError(HeartMuLaError):
    """A codes tensor or codes file has the wrong shape, dtype or values."""


class OutputError(HeartMuLaError):
    """An output path cannot be written: a folder, a device, read-only, or the disk is full."""


class LoraError(CheckpointError):
    """A LoRA file cannot be applied to the LM as a whole: unreadable, another model's or size's layers,
    or a kind of adapter the pack does not apply (DoRA). Never applied in part."""
