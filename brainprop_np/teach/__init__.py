"""The teaching tools: one learning trial traced layer by layer (trace.py), its feedback figures
(figures.py), the explain command (explain.py), finite-difference checks (gradcheck.py)."""
