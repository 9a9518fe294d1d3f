"""lmms-eval looks for a plugin's tasks here; this plugin adds none (fgvqa/predict writes its own)."""
