"""Issue 26: the project's own attacks, one regression test per finding."""
