"""Collections of pictures and what a network makes of them: features, patches, embeddings."""
