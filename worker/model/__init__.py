"""The model behind `worker.protocols.Model`: OpenAI's Responses and Chat Completions APIs
through the `openai` SDK (`backends.py`) and how their failures read (`errors.py`)."""
