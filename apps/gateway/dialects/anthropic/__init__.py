"""Anthropic's Messages API as a client-facing format, translated to and from the canonical one."""
