"""The model zoo's architectures, tiny and at random init: each builder returns ``(loss_fn, model, *inputs)``.

Every model is built in float64 from a fixed seed, so its gradients can be compared with
graphaudit's evaluation of the imported forms. Nothing is downloaded: the ``transformers``
models come from tiny configs, and the CNNs are written with ``torch.nn`` block by block as
torchvision (and timm) define them, since timm imports torchvision, whose registry build
cannot load beside torch 2.13.0+cpu.

Sizes: hidden 32, 2 layers, sequences of 8 tokens, 32x32 images, batch 2. Models run in
eval mode (dropout off) unless a row says otherwise: GPT-2 trains with its dropout on, and
the ResNet's BatchNorm normalises with the batch's statistics (training mode).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

BATCH, SEQ, HIDDEN, LAYERS, HEADS, VOCAB, CLASSES, IMAGE = 2, 8, 32, 2, 4, 64, 5, 32


def _prepared(model: nn.Module, train: bool = False) -> nn.Module:
    model.double()
    return model.train(train)


def _tokens(vocab: int = VOCAB, seq: int = SEQ) -> torch.Tensor:
    return torch.randint(0, vocab, (BATCH, seq))


def _images(channels_last: bool = False) -> torch.Tensor:
    images = torch.randn(BATCH, 3, IMAGE, IMAGE, dtype=torch.float64)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def _labels() -> torch.Tensor:
    return torch.randint(0, CLASSES, (BATCH,))


def classify(model, x, labels):
    """Cross-entropy of a classifier's logits: the loss of the CNNs and recurrent nets."""
    return F.cross_entropy(model(x), labels)


def hf_loss(model, input_ids, labels, **extra):
    """A ``transformers`` model's own loss, as its users train it."""
    return model(input_ids, labels=labels, **extra).loss


def hf_masked_loss(model, input_ids, attention_mask, labels):
    return model(input_ids, attention_mask=attention_mask, labels=labels).loss


def hf_image_loss(model, pixel_values, labels):
    return model(pixel_values=pixel_values, labels=labels).loss


# --- transformers, from tiny configs ------------------------------------------------------------


def bert():
    """BERT for sequence classification; the second sequence padded (the attention mask)."""
    import transformers as hf

    config = hf.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                           num_attention_heads=HEADS, intermediate_size=2 * HIDDEN, max_position_embeddings=SEQ,
                           num_labels=CLASSES)
    model = _prepared(hf.BertForSequenceClassification(config))
    mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    mask[1, SEQ // 2:] = 0
    return hf_masked_loss, model, _tokens(), mask, _labels()


def gpt2():
    """GPT-2 language model in training mode (dropout on), its output embedding tied to the input's."""
    import transformers as hf

    config = hf.GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS,
                           tie_word_embeddings=True, bos_token_id=0, eos_token_id=0)
    model = _prepared(hf.GPT2LMHeadModel(config), train=True)
    tokens = _tokens()
    return hf_loss, model, tokens, tokens


def _decoder_config(cls, **extra):
    """LLaMA-style: RoPE, RMSNorm, SwiGLU, grouped-query attention (4 query heads share 2 key/value heads)."""
    return cls(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
               num_attention_heads=HEADS, num_key_value_heads=HEADS // 2, max_position_embeddings=2 * SEQ, **extra)


def llama():
    import transformers as hf

    model = _prepared(hf.LlamaForCausalLM(_decoder_config(hf.LlamaConfig)))
    tokens = _tokens()
    return hf_loss, model, tokens, tokens


def mistral():
    """Mistral: LLaMA's blocks with sliding-window attention (a window of half the sequence)."""
    import transformers as hf

    model = _prepared(hf.MistralForCausalLM(_decoder_config(hf.MistralConfig, sliding_window=SEQ // 2)))
    tokens = _tokens()
    return hf_loss, model, tokens, tokens


def t5():
    """T5 encoder-decoder: relative position buckets, T5's RMS layer norm, cross-attention."""
    import transformers as hf

    config = hf.T5Config(vocab_size=VOCAB, d_model=HIDDEN, d_kv=HIDDEN // HEADS, d_ff=2 * HIDDEN, num_layers=LAYERS,
                         num_heads=HEADS, decoder_start_token_id=0)
    model = _prepared(hf.T5ForConditionalGeneration(config))
    return hf_loss, model, _tokens(), _tokens()


def vit():
    """ViT: 8x8 patches of a 32x32 image (16 tokens and the class token)."""
    import transformers as hf

    config = hf.ViTConfig(image_size=IMAGE, patch_size=8, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                          num_attention_heads=HEADS, intermediate_size=2 * HIDDEN, num_labels=CLASSES)
    model = _prepared(hf.ViTForImageClassification(config))
    return hf_image_loss, model, _images(), _labels()


# --- CNNs, written as torchvision defines them --------------------------------------------------


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            activation: Callable[[], nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: a bias-free convolution, BatchNorm, an activation in place."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([activation(inplace=True)] if activation else []))


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: two 3x3 convolutions, a 1x1 projection when the shape changes, the
    shortcut added in place."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, activation=None))
        self.downsample = conv_bn(cin, cout, 1, stride, activation=None) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.body(x)
        y += x if self.downsample is None else self.downsample(x)
        return F.relu(y, inplace=True)


def resnet():
    """ResNet-18's shape, two stages of widths 8 and 16; BatchNorm in training mode (batch statistics)."""
    model = nn.Sequential(conv_bn(3, 8, 7, 2), nn.MaxPool2d(3, 2, 1), BasicBlock(8, 8, 1), BasicBlock(8, 16, 2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, CLASSES))
    return classify, _prepared(model, train=True), _images(), _labels()


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ConvNeXt LayerNorm2d: layer norm over channels, moved last and back."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: 7x7 depthwise convolution, channels-last LayerNorm, an MLP of 4x width
    with GELU, the layer scale, a residual (stochastic depth is the identity in eval mode)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

    def forward(self, x):
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.fc2(F.gelu(self.fc1(y))).permute(0, 3, 1, 2)
        return x + self.layer_scale * y


def convnext():
    """ConvNeXt's shape, widths 16 and 32, model and images in channels_last memory format."""
    model = nn.Sequential(nn.Conv2d(3, 16, 4, 4), LayerNorm2d(16, eps=1e-6), CNBlock(16),
                          LayerNorm2d(16, eps=1e-6), nn.Conv2d(16, 32, 2, 2), CNBlock(32),
                          nn.AdaptiveAvgPool2d(1), LayerNorm2d(32, eps=1e-6), nn.Flatten(), nn.Linear(32, CLASSES))
    model = _prepared(model).to(memory_format=torch.channels_last)
    return classify, model, _images(channels_last=True), _labels()


class SqueezeExcitation(nn.Module):
    """torchvision's SqueezeExcitation: pooled channels through two 1x1 convolutions gate the input."""

    def __init__(self, channels: int, squeezed: int, activation=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeezed, 1), nn.Conv2d(squeezed, channels, 1)
        self.activation, self.gate = activation(), gate()

    def forward(self, x):
        scale = self.gate(self.fc2(self.activation(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return scale * x


class InvertedResidual(nn.Module):
    """MobileNetV3's and EfficientNet's MBConv: expand 1x1, depthwise, squeeze-excite, project 1x1; a
    residual when the shape is kept."""

    def __init__(self, cin: int, expanded: int, cout: int, kernel: int, stride: int, activation, se: nn.Module | None):
        super().__init__()
        layers = [conv_bn(cin, expanded, 1, activation=activation)] if expanded != cin else []
        layers += [conv_bn(expanded, expanded, kernel, stride, groups=expanded, activation=activation),
                   *([se] if se else []), conv_bn(expanded, cout, 1, activation=None)]
        self.block, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor``, at least ``divisor``, never 10%
    below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v3():
    """MobileNetV3-small's first blocks: hardswish, squeeze-excite gated by hardsigmoid (as torchvision's),
    and its head (Linear, hardswish, dropout, Linear)."""

    def se(channels):
        return SqueezeExcitation(channels, make_divisible(channels // 4), nn.ReLU, nn.Hardsigmoid)

    model = nn.Sequential(
        conv_bn(3, 16, 3, 2, activation=nn.Hardswish),
        InvertedResidual(16, 16, 16, 3, 2, nn.ReLU, se(16)),
        InvertedResidual(16, 72, 24, 3, 2, nn.ReLU, None),
        InvertedResidual(24, 96, 24, 5, 1, nn.Hardswish, se(96)),
        conv_bn(24, 96, 1, activation=nn.Hardswish), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(96, 64), nn.Hardswish(inplace=True), nn.Dropout(0.2), nn.Linear(64, CLASSES))
    return classify, _prepared(model), _images(), _labels()


def efficientnet():
    """EfficientNet-B0's first stages: SiLU, squeeze-excite with SiLU and a sigmoid gate, MBConv 1 and 6."""

    def se(channels, cin):
        return SqueezeExcitation(channels, max(1, cin // 4), nn.SiLU, nn.Sigmoid)

    model = nn.Sequential(
        conv_bn(3, 16, 3, 2, activation=nn.SiLU),
        InvertedResidual(16, 16, 8, 3, 1, nn.SiLU, se(16, 16)),
        InvertedResidual(8, 48, 12, 3, 2, nn.SiLU, se(48, 8)),
        InvertedResidual(12, 72, 12, 5, 1, nn.SiLU, se(72, 12)),
        conv_bn(12, 64, 1, activation=nn.SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
        nn.Linear(64, CLASSES))
    return classify, _prepared(model), _images(), _labels()


class UNet(nn.Module):
    """A two-level U-Net: max pooling down, a transposed convolution up, the skip concatenated."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.down = nn.Sequential(conv_bn(3, width, 3), conv_bn(width, width, 3))
        self.bottom = nn.Sequential(nn.MaxPool2d(2), conv_bn(width, 2 * width, 3))
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.out = nn.Sequential(conv_bn(2 * width, width, 3), nn.Conv2d(width, CLASSES, 1))

    def forward(self, x):
        skip = self.down(x)
        return self.out(torch.cat([skip, self.up(self.bottom(skip))], dim=1))


def unet():
    """Per-pixel classes of 16x16 images (the loss: cross-entropy over every pixel)."""
    images = torch.randn(BATCH, 3, IMAGE // 2, IMAGE // 2, dtype=torch.float64)
    return classify, _prepared(UNet()), images, torch.randint(0, CLASSES, (BATCH, IMAGE // 2, IMAGE // 2))


# --- recurrent nets and torch's own attention ----------------------------------------------------


class RecurrentLM(nn.Module):
    """Embedding, a 2-layer ``nn.LSTM`` or ``nn.GRU``, a linear head over the vocabulary."""

    def __init__(self, cell: type[nn.RNNBase]):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.rnn = cell(HIDDEN, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, VOCAB)

    def forward(self, tokens):
        return self.head(self.rnn(self.embed(tokens))[0])


def next_token(model, tokens):
    """Next-token cross-entropy of a language model over a sequence."""
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def lstm():
    return next_token, _prepared(RecurrentLM(nn.LSTM)), _tokens()


def gru():
    return next_token, _prepared(RecurrentLM(nn.GRU)), _tokens()


class AttentionClassifier(nn.Module):
    """``nn.MultiheadAttention`` self-attention over a padded batch, mean-pooled into a linear head."""

    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(HIDDEN, HEADS, batch_first=True)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x, padding):
        return self.head(self.attention(x, x, x, key_padding_mask=padding, need_weights=False)[0].mean(1))


def multihead_attention():
    padding = torch.zeros(BATCH, SEQ, dtype=torch.bool)
    padding[1, SEQ // 2:] = True
    x = torch.randn(BATCH, SEQ, HIDDEN, dtype=torch.float64)
    return (lambda model, x, padding, labels: F.cross_entropy(model(x, padding), labels),
            _prepared(AttentionClassifier()), x, padding, _labels())


def transformer_encoder():
    """torch's own ``nn.TransformerEncoder`` (2 pre-norm layers, GELU) with a linear head."""
    layer = nn.TransformerEncoderLayer(HIDDEN, HEADS, 2 * HIDDEN, activation="gelu", batch_first=True,
                                       norm_first=True)
    model = nn.Sequential(nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False), nn.Flatten(),
                          nn.Linear(SEQ * HIDDEN, CLASSES))
    return classify, _prepared(model), torch.randn(BATCH, SEQ, HIDDEN, dtype=torch.float64), _labels()


# name -> builder, in the table's order
MODELS: dict[str, Callable[[], tuple]] = {
    "bert": bert, "gpt2": gpt2, "llama": llama, "mistral": mistral, "t5": t5, "vit": vit,
    "resnet": resnet, "convnext": convnext, "mobilenet_v3": mobilenet_v3, "efficientnet": efficientnet,
    "unet": unet, "lstm": lstm, "gru": gru, "multihead_attention": multihead_attention,
    "transformer_encoder": transformer_encoder,
}


def build(name: str, seed: int = 0) -> tuple:
    """``(loss_fn, model, *inputs)`` of the zoo's model ``name``, from ``seed``."""
    if name not in MODELS:
        raise ValueError(f"zoo: unknown model {name!r}; the models are {', '.join(MODELS)}")
    torch.manual_seed(seed)
    return MODELS[name]()
