"""Custom Rasa NLU components: a KB-aware jieba tokenizer and a spaCy entity ruler.

Both learn everything they know from the training data that `make kb` writes from kb/
(the jieba dictionary folder and the lookup tables), so the knowledge base stays the one
place where names, aliases and keywords are kept.
"""
