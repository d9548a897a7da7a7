"""Agent mode: Kimi calls tools in the kernel, and model-proposed code runs only after a yes."""
