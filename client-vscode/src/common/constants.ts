/** Names shared by the extension, its package.json and its tests. No `vscode` import here. */

/** The attribution methods the server knows (see `promptxray methods`). */
export const METHODS = [
  'occlusion',
  'gradient_x_input',
  'saliency',
  'integrated_gradients',
  'attention',
  'attention_rollout',
  'shapley',
  'surrogate',
  'counterfactual',
  'activation_max',
  'auto',
] as const;
export type Method = (typeof METHODS)[number];

export const METHOD_DESCRIPTIONS: Record<Method, string> = {
  occlusion: 'remove each span and measure the change in the answer’s log-probability (signed, measured)',
  gradient_x_input: 'gradient × embedding (signed, fast)',
  saliency: 'gradient norm (unsigned, fast)',
  integrated_gradients: 'path-integrated gradients (signed, slower)',
  attention: 'attention weights of the answer’s positions (unsigned, not a measured effect)',
  attention_rollout: 'attention rolled out through the layers (unsigned, not a measured effect)',
  shapley: 'sampled Shapley values over words or lines: exact when there are at most 10 (signed, measured, slower)',
  surrogate: 'a sparse linear model distilled from random ablations, ContextCite-style; its held-out fit R² is reported',
  counterfactual: 'the smallest edits that change the model’s answer, verified by rerunning; spans are scored by occlusion',
  activation_max: 'what activates a chosen neuron: prompt tokens and an optimised input (torch only; not about the answer)',
  auto: 'runs the cheap methods, measures each one’s faithfulness on this prompt, and keeps the most faithful within the time budget',
};

export const GRANULARITIES = ['token', 'word', 'line', 'auto'] as const;
export const TRIGGERS = ['onChange', 'onSave', 'manual'] as const;
/** Inference backends (explainers/backends `BACKENDS`): torch runs every method; onnx and vllm
 * (a model served by a vLLM engine at `promptxray.endpoint`) run the forward-only ones. */
export const BACKENDS = ['torch', 'onnx', 'vllm'] as const;
/** Where and in what precision the torch backend runs (explainers/backends/options.py). */
export const DEVICES = ['auto', 'cpu', 'cuda'] as const;
export const DTYPES = ['auto', 'float32', 'bfloat16', 'float16'] as const;
/** Languages of the plain-language explanation in hovers (server/settings.py `LANGUAGES`). */
export const LANGUAGES = ['en', 'zh'] as const;

/** The semantic-token legend the server announces (server/convert.py). */
export const TOKEN_TYPES = ['xrayPositive', 'xrayNegative'] as const;
export const TOKEN_MODIFIERS = ['level1', 'level2', 'level3', 'level4', 'level5'] as const;

/** Commands the server executes (workspace/executeCommand); VS Code gets them from the client. */
export const SERVER_COMMANDS = {
  explain: 'promptxray.explain',
  explainWith: 'promptxray.explainWith',
  setTarget: 'promptxray.setTarget',
  compareMethods: 'promptxray.compareMethods',
  showReport: 'promptxray.showReport',
} as const;

/** The client's own palette commands: different ids, so they never clash with the server's. */
export const CLIENT_COMMANDS = {
  explain: 'promptxray.client.explain',
  explainWith: 'promptxray.client.explainWith',
  setTarget: 'promptxray.client.setTarget',
  compareMethods: 'promptxray.client.compareMethods',
  showHtml: 'promptxray.client.showHtml',
  restart: 'promptxray.client.restart',
  showLogs: 'promptxray.client.showLogs',
} as const;

/** The custom request returning an Explanation as JSON. */
export const EXPLANATION_REQUEST = 'promptxray/explanation';

/** Languages this extension contributes, and the glob for Markdown prompt files it attaches to. */
export const LANGUAGE_IDS = ['prompt', 'prompty'] as const;
export const PROMPT_MD_PATTERN = '**/*.prompt.md';

/** The configuration section and the settings whose change restarts the server (what it
 * runs on: the interpreter, the model, the backend and how it is reached or loaded). */
export const SECTION = 'promptxray';
export const RESTART_KEYS = ['python', 'model', 'backend', 'endpoint', 'servedModel', 'device', 'dtype'] as const;
/** Settings that could make the extension run code from the workspace, or send the prompts
 * somewhere (`endpoint`): user values only when the workspace is not trusted (also listed in
 * package.json `restrictedConfigurations`; `endpoint` is machine-scoped there as well). */
export const RESTRICTED_KEYS = ['python', 'model', 'endpoint'] as const;
