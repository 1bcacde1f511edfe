"""The agent model G (the paper's "Body of Her" model) and how to sample it; see model.agent.model."""

from model.agent.batch import AgentBatch
from model.agent.config import AgentConfig
from model.agent.model import AgentModel, AgentOutput, RolloutLogProbs
from model.agent.rollout import Rollout
from model.agent.sampling import SamplingParams
from model.agent.session import FrameOutput, StreamingSession
from model.agent.visual_tokens import DCTPixelTokenizer, PoseTokenizer, VisualTokenizer, make_visual_tokenizer

__all__ = [
    "AgentBatch", "AgentConfig", "AgentModel", "AgentOutput", "DCTPixelTokenizer", "FrameOutput", "PoseTokenizer", "Rollout",
    "RolloutLogProbs", "SamplingParams", "StreamingSession", "VisualTokenizer", "make_visual_tokenizer",
]
