"""The knowledge base (知识库): articles operators answer consultations with on the spot."""
