"""Model folders as a user brings them, built offline for the tests (random initialisation)."""

CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=64)


def build(kind: str, tokenizer):
    """A causal LM of ``kind`` (gpt2, llama, qwen2, mistral) at random initialisation, sized for the tests."""
    from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig,
                              MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

    # the embedding padded past the tokenizer, as released models do (Qwen2's tokenizer class adds a token on load)
    ids = dict(vocab_size=len(tokenizer) + 64, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if kind == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=4, **ids))
    config, model = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
                     "mistral": (MistralConfig, MistralForCausalLM)}[kind]
    return model(config(**SMALL, **ids))


def model_folder(kind: str, path):
    """The embedded subword model's BPE tokenizer (4,096 tokens) with a chat template, beside random weights."""
    import torch
    from transformers import AutoTokenizer

    from ttsample.lm.loading import EMBEDDED

    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED["subword"], local_files_only=True)
    tokenizer.chat_template = CHAT
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    build(kind, tokenizer).save_pretrained(path)
    return path


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


def prm_folder(path, kind: str = "causal", labels: int = 2, seed: int = 0):
    """A process reward model at random initialisation with the embedded subword tokenizer: a causal Llama (read
    at its +/- tokens) or a Llama token classifier with labels bad/good (``labels=2``) or a scalar head (1)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForTokenClassification

    from ttsample.lm.loading import EMBEDDED

    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED["subword"], local_files_only=True)
    names = {0: "bad", 1: "good"} if labels == 2 else {0: "score"}
    config = LlamaConfig(**SMALL, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, num_labels=labels, id2label=names,
                         label2id={v: k for k, v in names.items()})
    torch.manual_seed(seed)
    (LlamaForCausalLM if kind == "causal" else LlamaForTokenClassification)(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
