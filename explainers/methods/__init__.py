"""Built-in explainer methods; importing this package registers each of them."""

from promptxray.explainers.methods import (  # noqa: F401
    attention,
    attention_rollout,
    gradient_x_input,
    integrated_gradients,
    occlusion,
    saliency,
)
