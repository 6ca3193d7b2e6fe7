"""Language models run by transformers: the chat task's interior-design assistant."""
