"""lmms-eval reads a plugin's models from AVAILABLE_MODELS: name -> class in models/<name>.py."""

AVAILABLE_MODELS = {"twinflow_echo": "TwinflowEcho"}
