"""The report stage's pieces: the paper's tables beside ours (`tables`), the figures (`figures`), the choices the
paper leaves open (`choices`) and the self-contained HTML page (`render`)."""
