"""Neural network building blocks (batch-first: ``[B x S]`` ids, ``[B x S x H]`` sequences, ``[B x H]`` pooled)."""

from flambe.nn.cnn import CNNEncoder, conv_block
from flambe.nn.distance import (
    CosineDistance,
    CosineMean,
    DistanceModule,
    EuclideanDistance,
    EuclideanMean,
    HyperbolicDistance,
    HyperbolicMean,
    MeanModule,
    get_distance_module,
    get_mean_module,
)
from flambe.nn.embedding import Embedder, Embeddings
from flambe.nn.mlp import MLPDecoder, MLPEncoder
from flambe.nn.module import Module
from flambe.nn.mos import MixtureOfSoftmax
from flambe.nn.pooling import AvgPooling, FirstPooling, LastPooling, MaxPooling, SumPooling
from flambe.nn.rnn import PooledRNNEncoder, RNNEncoder
from flambe.nn.sequential import Sequential
from flambe.nn.softmax import SoftmaxLayer
from flambe.nn.text_cnn import TextCNNEncoder
from flambe.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    generate_square_subsequent_mask,
)

__all__ = [
    "Module",
    "Embeddings", "Embedder",
    "RNNEncoder", "PooledRNNEncoder",
    "CNNEncoder", "conv_block", "TextCNNEncoder",
    "MLPEncoder", "MLPDecoder", "SoftmaxLayer", "MixtureOfSoftmax",
    "FirstPooling", "LastPooling", "SumPooling", "AvgPooling", "MaxPooling",
    "Sequential",
    "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer", "generate_square_subsequent_mask",
    "DistanceModule", "MeanModule", "EuclideanDistance", "EuclideanMean", "CosineDistance", "CosineMean",
    "HyperbolicDistance", "HyperbolicMean", "get_distance_module", "get_mean_module",
]
