"""Client-facing API formats: what a client sends and what it gets back.

One package or module per format: ``openai`` (the canonical format), ``anthropic`` (the
Messages API, translated to and from the canonical one) and ``azure`` (OpenAI's format on
Azure OpenAI's paths). Providers know only upstream formats; these know only clients'.
"""
