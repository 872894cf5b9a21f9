"""The torch-free job store: tables, sessions, migrations, artifacts and keyword-only functions."""
