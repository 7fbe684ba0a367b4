"""Model folders as a user brings them, built offline for the tests (random initialisation)."""


def tiny_classifier(folder, labels: int, seed: int = 0):
    """A random-initialised two-layer BERT classifier with the shipped MiniLM tokenizer, saved as a user's folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from ttsample.lm.embedding import minilm_folder

    tokenizer = AutoTokenizer.from_pretrained(minilm_folder(), local_files_only=True)
    names = {0: "bad", 1: "good"} if labels == 2 else {0: "score"}
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=labels, id2label=names,
                        label2id={v: k for k, v in names.items()})
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
