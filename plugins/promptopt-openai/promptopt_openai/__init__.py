"""promptopt backend for OpenAI-compatible servers (vLLM, SGLang, llama.cpp server, Ollama, TGI)."""
