"""The promptxray language server (pygls): see server.py."""
