"""The Gradio chat that annotates every reply with its explanation (see issue: chat UI)."""
