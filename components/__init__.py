"""Custom Rasa NLU components: a text normalizer, a KB-aware jieba tokenizer, a spaCy entity ruler.

The normalizer reads how people type from lexicon/; the other two learn everything they know from the training data that `make kb` writes from kb/
(the jieba dictionary folder and the lookup tables), so the knowledge base stays the one
place where names, aliases and keywords are kept.
"""
