"""The bundled sync expert's LSE-C scale, without torch: its scorer (core.sync.ExpertScorer)
carries it, and the project (core.project) judges a threshold by it without importing torch."""

# Segment confidence under which a verdict says "weak", on the bundled expert's scale (session 8):
# midway between the mean segment confidence of held-out clips of 2 s and more with their own audio
# (0.1027) and with a foreign track (0.0440), `python main.py evaluate-expert`. Each expert has its
# own scale (the one before: 0.035, set from clip LSE-C means, another statistic): a project keeps
# the expert its scores are on (core.project.SetScores).
EXPERT_WEAK_BELOW = 0.0734
# The expert compares L2-normalised embeddings, whose distances lie in 0..2: an LSE-C (median − min
# of the mean distance over offsets) above 2 cannot happen on its scale.
EXPERT_LSE_C_LIMIT = 2.0
