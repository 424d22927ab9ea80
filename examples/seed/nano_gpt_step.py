"""One AdamW training step of a Karpathy-style nano GPT.

Token + position embeddings, pre-norm Blocks (LayerNorm, causal self-attention through
mx.fast.scaled_dot_product_attention, GELU MLP), a final LayerNorm and an lm head.
Prints the next-token loss before and after the step.
"""

import math

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim
from ember.utils import tree_flatten


class CausalSelfAttention(nn.Module):
    def __init__(self, dims: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dims, 3 * dims)
        self.proj = nn.Linear(dims, dims)
        self.dropout = nn.Dropout(dropout)

    def __call__(self, x, mask):
        B, L, D = x.shape
        q, k, v = mx.split(self.qkv(x), 3, axis=-1)
        # (B, L, D) -> (B, heads, L, D / heads)
        q, k, v = (t.reshape(B, L, self.num_heads, -1).transpose(0, 2, 1, 3) for t in (q, k, v))
        scale = 1.0 / math.sqrt(q.shape[-1])
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
        out = out.transpose(0, 2, 1, 3).reshape(B, L, D)
        return self.dropout(self.proj(out))


class MLP(nn.Module):
    def __init__(self, dims: int, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(dims, 4 * dims)
        self.proj = nn.Linear(4 * dims, dims)
        self.dropout = nn.Dropout(dropout)

    def __call__(self, x):
        return self.dropout(self.proj(nn.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, dims: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(dims)
        self.attn = CausalSelfAttention(dims, num_heads, dropout)
        self.ln2 = nn.LayerNorm(dims)
        self.mlp = MLP(dims, dropout)

    def __call__(self, x, mask):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size: int, block_size: int, dims: int, num_heads: int,
                 num_layers: int, dropout: float = 0.0):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dims)
        self.position_embedding = nn.Embedding(block_size, dims)
        self.dropout = nn.Dropout(dropout)
        self.blocks = [Block(dims, num_heads, dropout) for _ in range(num_layers)]
        self.ln_f = nn.LayerNorm(dims)
        self.lm_head = nn.Linear(dims, vocab_size, bias=False)

    def __call__(self, idx):
        L = idx.shape[1]
        mask = nn.MultiHeadAttention.create_additive_causal_mask(L)
        x = self.token_embedding(idx) + self.position_embedding(mx.arange(L))
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x, mask)
        return self.lm_head(self.ln_f(x))


def loss_fn(model, inputs, targets):
    logits = model(inputs)
    return nn.losses.cross_entropy(logits, targets, reduction="mean")


def main(vocab_size=64, block_size=16, dims=32, num_heads=4, num_layers=2, batch_size=4,
         lr=3e-3, dropout=0.0, seed=0):
    mx.random.seed(seed)
    model = GPT(vocab_size, block_size, dims, num_heads, num_layers, dropout)
    mx.eval(model.parameters())
    num_params = sum(p.size for _, p in tree_flatten(model.parameters()))
    print(f"parameters: {num_params}")

    # a toy corpus: random tokens; each target is the next token of the sequence
    tokens = mx.random.randint(0, vocab_size, (batch_size, block_size + 1))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    optimizer = optim.AdamW(learning_rate=lr, weight_decay=0.1)
    loss_and_grad = nn.value_and_grad(model, loss_fn)

    model.train()
    loss, grads = loss_and_grad(model, inputs, targets)
    optimizer.update(model, grads)
    mx.eval(model.parameters(), optimizer.state)
    model.eval()
    after = loss_fn(model, inputs, targets)
    losses = [loss.item(), after.item()]
    print(f"loss before step {losses[0]:.6f}")
    print(f"loss after step  {losses[1]:.6f}")
    return losses


if __name__ == "__main__":
    main()
