"""Intellimeter cloud API (api.intellimeter.ca): session/key login, JSON or XML answers."""
