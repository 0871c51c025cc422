"""The bundled sync expert's LSE-C scale, without torch: its scorer (core.sync.ExpertScorer)
carries it, and the project (core.project) judges a threshold by it without importing torch."""

# Segment LSE-C under which a verdict says "weak": the bundled expert gives held-out clips 0.0485
# on average with their own audio and 0.0251 with a foreign track (resources/models/MODEL_CARD.md);
# midway.
EXPERT_WEAK_BELOW = 0.035
# The expert compares L2-normalised embeddings, whose distances lie in 0..2: an LSE-C (median − min
# of the mean distance over offsets) above 2 cannot happen on its scale.
EXPERT_LSE_C_LIMIT = 2.0
