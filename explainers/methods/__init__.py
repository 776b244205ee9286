"""Built-in explainer methods; importing this package registers each of them."""

from promptxray.explainers.methods import (  # noqa: F401
    activation_max,
    attention,
    attention_rollout,
    counterfactual,
    gradient_x_input,
    integrated_gradients,
    occlusion,
    saliency,
    shapley,
    surrogate,
)
