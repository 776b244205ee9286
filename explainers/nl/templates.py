"""The words promptxray says about an explanation, in English and Chinese: format strings
only, filled by `describe.py` from an Explanation's own numbers (data, not logic)."""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = ("en", "zh")

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "quote": '"{text}"',
        # contrastive explanations (a foil): scores are about log P(answer) − log P(foil)
        "contrast": (
            "Why {target} rather than {foil}: P {prob} against {foil_prob}, "
            "log P({target}) − log P({foil}) = {value} nats; every score below is an effect "
            "on that difference (positive: favours the answer over the foil)."
        ),
        "sum_contrast": "The answer {target} (P {prob}) rather than {foil} (P {foil_prob})",
        "removal_pos_contrast": (
            "removing {span} lowers the answer's log-probability lead over the foil by {value}"
        ),
        "removal_neg_contrast": (
            "removing {span} raises the answer's log-probability lead over the foil by {value}"
        ),
        "removal_pos_more_contrast": "removing {span} lowers it by {value}",
        "removal_neg_more_contrast": "removing {span} raises it by {value}",
        "against_contrast": "Favouring {foil} over the answer: {items}.",
        "no_against_contrast": "No part of the prompt measurably favours {foil} over the answer.",
        "span_removal_contrast": (
            "{rank} · removing this {unit} {way} log P({target}) − log P({foil}) by {value} nats"
        ),
        "span_estimate_contrast": (
            "{rank} · by {method}, this {unit} {way} log P({target}) − log P({foil}) by {value}"
        ),
        "sep": "; ",
        "list_sep": ", ",
        "target": (
            "The model's answer {target} has probability {prob} "
            "(log-probability {logprob}; {method} on {model}, {granularity} level)."
        ),
        "target_sampled": (
            "The model's answer {target} ({method} on {model}, {granularity} level; its "
            "probability is not known: the server returns text only)."
        ),
        "auto": (
            "The method was chosen automatically from {n} tried, as the most faithful by "
            "comprehensiveness minus sufficiency (in log-probability)."
        ),
        "drivers": "Top drivers: {items}.",
        "unsigned_drivers": "Highest scores: {items}.",
        "no_drivers": "No part of the prompt raises the answer measurably.",
        "against": "Pushing against the answer: {items}.",
        "no_against": "No part of the prompt pushes measurably against the answer.",
        "unsigned": (
            "{method} scores are unsigned: they do not say whether a part raises or lowers "
            "the answer."
        ),
        "removal_pos": "removing {span} lowers the answer's log-probability by {value}",
        "removal_neg": "removing {span} raises the answer's log-probability by {value}",
        "removal_pos_more": "removing {span} lowers it by {value}",
        "removal_neg_more": "removing {span} raises it by {value}",
        "score_item": "{span} score {value} ({method})",
        "score_item_more": "{span} score {value}",
        "score_note": (
            "These are {method} scores, not the measured effect of removing each part alone."
        ),
        "no_effect": (
            "No measurable effect (|score| under {threshold} nats): "
            "{count} of {total} parts{named}."
        ),
        "no_effect_named": ", e.g. {items}",
        "no_effect_none": "Every part has a measurable effect ({total} parts).",
        "all_zero": "Every score is zero: the method found no effect of any of the {total} parts.",
        "faith": "Faithfulness: {items}.",
        "faith_none": "No faithfulness figures were computed for this explanation.",
        # comprehensiveness and sufficiency: the fractions named once ({parts}, then "them"),
        # each probability figure with its log-probability one ({log}: log_same or log_other)
        "top_bins": "the top-ranked {bins} of the prompt",
        "top_parts": "the top-ranked parts of the prompt",
        "them": "them",
        "comprehensiveness_pos": (
            "removing {parts} lowers the answer's probability by {value} on average "
            "({log}comprehensiveness, higher = more faithful)"
        ),
        "comprehensiveness_neg": (
            "removing {parts} raises the answer's probability by {value} on average "
            "({log}comprehensiveness, higher = more faithful)"
        ),
        "sufficiency_pos": (
            "keeping only {parts} lowers the answer's probability by {value} on average "
            "({log}sufficiency, lower = more faithful)"
        ),
        "sufficiency_neg": (
            "keeping only {parts} raises the answer's probability by {value} on average "
            "({log}sufficiency, lower = more faithful)"
        ),
        "log_same": "{value} nats in log-probability; ",
        "log_other": "but {way} its log-probability by {value} nats; ",
        "comprehensiveness_logprob": (
            "removing {parts} {way} the answer's log-probability by {value} nats on average "
            "(comprehensiveness, higher = more faithful)"
        ),
        "sufficiency_logprob": (
            "keeping only {parts} {way} the answer's log-probability by {value} nats on average "
            "(sufficiency, lower = more faithful)"
        ),
        "comprehensiveness_logprob_contrast": (
            "removing {parts} {way} the answer's log-probability lead over the foil by {value} "
            "nats on average (comprehensiveness, higher = more faithful)"
        ),
        "sufficiency_logprob_contrast": (
            "keeping only {parts} {way} the answer's log-probability lead over the foil by "
            "{value} nats on average (sufficiency, lower = more faithful)"
        ),
        "deletion_auc": (
            "removing parts from the top-ranked down, the answer's probability averages "
            "{value} (deletion AUC; lower = more faithful)"
        ),
        "insertion_auc": (
            "adding parts back from the top-ranked down, the answer's probability averages "
            "{value} (insertion AUC; higher = more faithful)"
        ),
        "surrogate_r2": "the surrogate predicts held-out ablations with R² = {value}",
        "surrogate_lds": "its rank correlation with them is {value} (LDS)",
        "shapley_efficiency_gap": (
            "the Shapley values' sum misses the full change by {value} (efficiency gap)"
        ),
        "completeness_error": (
            "the scores' sum misses the log-probability change from the baseline by {value} "
            "(completeness error)"
        ),
        "completeness_relative_error": (
            "the miss is {value} of that change (relative completeness error)"
        ),
        "ig_completeness_gap": (
            "the scores' sum misses the log-probability change from the baseline by {value} "
            "(completeness gap)"
        ),
        "counterfactuals_found": "{value} verified edits change the model's answer",
        "counterfactual_min_edits": "the smallest of them touches {value} part(s)",
        "other_metric": "{name} = {value}",
        # self-explanation
        "question": "Which words of my message made you answer that way? List them in quotes.",
        "se_head": "Asked which words made it answer that way, the model said: {answer}",
        "se_none": "It named no words of the prompt.",
        "se_supported": "{span}: supported — it overlaps {matched}, among the top {k} drivers",
        "se_not_supported": "{span}: not supported by the measured attributions{score}",
        "se_score": " (score {value})",
        "se_not_in_prompt": "{span}: not in the prompt",
        "se_summary": "{supported} of {checked} named parts of the prompt are supported.",
        # span line (hover, diagnostic, inlay hint): one line about one span
        "rank": "#{rank} of {total} {units}",
        "span_removal": "{rank} · P({target}) {before} → {after} without this {unit}",
        "span_removal_raw": "{rank} · removing this {unit} {way} log P({target}) by {value} nats",
        "span_removal_bound": (
            "{rank} · removing this {unit} lowers log P({target}) by at least {value} nats{answers}"
        ),
        "remote_answers": "; the model then answers {answer}",
        "at_least": "at least {value}",
        "span_proxy": (
            "{rank} · not sent to the server: by the proxy {model}, removing this {unit} {way} "
            "log P({target}) by {value} nats"
        ),
        "remote_proxy": (
            "The proxy {model} explained first; the server scored its {scored} largest of "
            "{total} parts (Spearman with the proxy {rho}, top 3 shared {shared})."
        ),
        "span_agreement_less": (
            "{rank} · without this {unit}, sampled answers are {value} less like {target} "
            "(95% interval of the change {low} to {high})"
        ),
        "span_agreement_more": (
            "{rank} · without this {unit}, sampled answers are {value} more like {target} "
            "(95% interval of the change {low} to {high})"
        ),
        "remote_source": "Scored by {model} at {endpoint}: {tier}.",
        "tier_prompt-logprobs": "exact log-probabilities (prompt log-probabilities)",
        "tier_generated-logprobs": (
            "log-probabilities of generated tokens, exact except where a bound is stated"
        ),
        "tier_text-only": (
            "sampled answers only; a score is how much less like the answer they become (0 to 1)"
        ),
        "remote_base_agreement": (
            "With the whole prompt, sampled answers match the answer {low} to {high} (95%)."
        ),
        "remote_bounds": (
            "{count} of {total} figures are lower bounds (without those parts the model answers "
            "otherwise)."
        ),
        "remote_cost": "{requests} requests, {tokens} prompt tokens.",
        "remote_price": "About ${price}.",
        "remote_rate_limited": "The server asked to wait {count} times (HTTP 429).",
        "remote_tier_note": "Not exact for every part because {note}.",
        "span_estimate": "{rank} · by {method}, this {unit} {way} log P({target}) by {value}",
        "span_salience": "{rank} · {method} {value} (unsigned: how much, not which way)",
        "span_activation": "{rank} · activation {value}",
        "span_no_effect": "{rank} · no measurable effect (|Δ log P| {value} < {threshold} nats)",
        "refined": (
            "Refined {lines} of {total} lines into words and {words} words into tokens{skipped}."
        ),
        "refined_skipped": "; {items}",
        "degraded": "Note: {reason}.",
        "answer_record": (
            "this {quant} export gave fp32's answer on {same} of {prompts} test prompts"
        ),
        "answer_differs": "Note: fp32 torch answers {text} to this prompt ({record}).",
        "answer_may_differ": (
            "Note: fp32 may answer differently: {token} won at {prob}, within the {quant} "
            "model's measured error ({record}; option reference_answer checks)."
        ),
        "answer_steady": (
            "Every answer token won by more than the export's measured error ({record})."
        ),
        "answer_checked": "fp32 torch gives the same answer ({record}).",
        "hint_no_effect": (
            "No measurable effect on the answer (|Δ log P| {value} < {threshold} nats); "
            "removing it saves {n} token(s)"
        ),
        "raises": "raises",
        "lowers": "lowers",
        # summary: two or three sentences about the whole prompt
        "sum_target": "The answer {target} (P {prob})",
        "sum_target_sampled": "The answer {target} (sampled answers match it {low} to {high})",
        "sum_drivers": "{head} rests most on {items}",
        "sum_salient": "{head} is most sensitive to {items} ({method}: unsigned)",
        "sum_no_drivers": "{head} rests on no single part of the prompt",
        "sum_against": "; {items} pushes against it",
        "sum_against_many": "; {items} push against it",
        "sum_end": ".",
        "sentence_gap": " ",
        "sum_no_effect": "{count} of {total} {units} have no measurable effect.",
        "sum_all_effect": "",
        "verdict_good": (
            "Faithfulness: good (removing the top-ranked parts costs the answer {comp} nats on "
            "average, keeping only them {suff})."
        ),
        "verdict_fair": (
            "Faithfulness: fair (removing the top-ranked parts costs the answer {comp} nats on "
            "average, keeping only them {suff})."
        ),
        "verdict_weak": (
            "Faithfulness: weak (removing the top-ranked parts costs the answer only {comp} "
            "nats on average, keeping only them {suff}): read the ranking with care."
        ),
        "verdict_none": "Faithfulness was not measured.",
        "units_token": "tokens",
        "units_word": "words",
        "units_line": "lines",
        "units_sentence": "sentences",
        "units_section": "sections",
        "units_message": "messages",
        "units_example": "parts (examples and the text around them)",
        "units_variable": "parts (variables and the text around them)",
        "units_auto": "parts",
        "se_short": "The model's own account: {supported} of {checked} named parts supported.",
    },
    "zh": {
        "quote": "“{text}”",
        "contrast": (
            "为什么是{target}而不是{foil}：P {prob} 对 {foil_prob}，"
            "log P({target}) − log P({foil}) = {value} nats；以下每个得分都是对这一差值的影响"
            "（正：偏向回答而非备选）。"
        ),
        "sum_contrast": "回答{target}（P {prob}）而不是{foil}（P {foil_prob}）",
        "removal_pos_contrast": "删去{span}使回答相对备选的对数概率优势降低 {value}",
        "removal_neg_contrast": "删去{span}使回答相对备选的对数概率优势升高 {value}",
        "removal_pos_more_contrast": "删去{span}使其降低 {value}",
        "removal_neg_more_contrast": "删去{span}使其升高 {value}",
        "against_contrast": "偏向{foil}而非回答的部分：{items}。",
        "no_against_contrast": "提示中没有任何部分可测地偏向{foil}而非回答。",
        "span_removal_contrast": (
            "{rank} · 去掉这一{unit}使 log P({target}) − log P({foil}) {way} {value} nats"
        ),
        "span_estimate_contrast": (
            "{rank} · 按 {method}，这一{unit}使 log P({target}) − log P({foil}) {way} {value}"
        ),
        "sep": "；",
        "list_sep": "、",
        "target": (
            "模型的回答{target}的概率为 {prob}"
            "（对数概率 {logprob}；方法 {method}，模型 {model}，粒度 {granularity}）。"
        ),
        "target_sampled": (
            "模型的回答{target}（方法 {method}，模型 {model}，粒度 {granularity}；"
            "服务器只返回文本，概率未知）。"
        ),
        "auto": (
            "该方法是从尝试的 {n} 个方法中自动选出的，"
            "按 comprehensiveness 减 sufficiency（以对数概率计）最忠实。"
        ),
        "drivers": "主要驱动：{items}。",
        "unsigned_drivers": "得分最高：{items}。",
        "no_drivers": "提示中没有任何部分可测地提高该回答。",
        "against": "与回答相反的部分：{items}。",
        "no_against": "提示中没有任何部分可测地压低该回答。",
        "unsigned": "{method} 的得分没有正负：它不表明某部分是提高还是压低回答。",
        "removal_pos": "删去{span}使回答的对数概率降低 {value}",
        "removal_neg": "删去{span}使回答的对数概率升高 {value}",
        "removal_pos_more": "删去{span}使其降低 {value}",
        "removal_neg_more": "删去{span}使其升高 {value}",
        "score_item": "{span}得分 {value}（{method}）",
        "score_item_more": "{span}得分 {value}",
        "score_note": "这些是 {method} 的得分，并非单独删去各部分的实测效果。",
        "no_effect": (
            "无可测效果（|得分| 低于 {threshold} nats）：{total} 个部分中有 {count} 个{named}。"
        ),
        "no_effect_named": "，例如{items}",
        "no_effect_none": "每个部分都有可测效果（共 {total} 个部分）。",
        "all_zero": "所有得分均为零：该方法未发现 {total} 个部分中任何一个有效果。",
        "faith": "忠实度：{items}。",
        "faith_none": "此解释未计算忠实度指标。",
        "top_bins": "排名前 {bins} 的部分",
        "top_parts": "排名靠前的部分",
        "them": "它们",
        "comprehensiveness_pos": (
            "删去{parts}平均使回答的概率降低 {value}（{log}comprehensiveness，越高越忠实）"
        ),
        "comprehensiveness_neg": (
            "删去{parts}平均使回答的概率升高 {value}（{log}comprehensiveness，越高越忠实）"
        ),
        "sufficiency_pos": (
            "只保留{parts}平均使回答的概率降低 {value}（{log}sufficiency，越低越忠实）"
        ),
        "sufficiency_neg": (
            "只保留{parts}平均使回答的概率升高 {value}（{log}sufficiency，越低越忠实）"
        ),
        "log_same": "对数概率 {value} nats；",
        "log_other": "但对数概率{way} {value} nats；",
        "comprehensiveness_logprob": (
            "删去{parts}平均使回答的对数概率{way} {value} nats（comprehensiveness，越高越忠实）"
        ),
        "sufficiency_logprob": (
            "只保留{parts}平均使回答的对数概率{way} {value} nats（sufficiency，越低越忠实）"
        ),
        "comprehensiveness_logprob_contrast": (
            "删去{parts}平均使回答相对备选的对数概率优势{way} {value} nats"
            "（comprehensiveness，越高越忠实）"
        ),
        "sufficiency_logprob_contrast": (
            "只保留{parts}平均使回答相对备选的对数概率优势{way} {value} nats"
            "（sufficiency，越低越忠实）"
        ),
        "deletion_auc": (
            "从排名最高处起逐步删除，回答的概率平均为 {value}（deletion AUC，越低越忠实）"
        ),
        "insertion_auc": (
            "从排名最高处起逐步加回，回答的概率平均为 {value}（insertion AUC，越高越忠实）"
        ),
        "surrogate_r2": "代理模型预测留出消融的 R² = {value}",
        "surrogate_lds": "与其秩相关为 {value}（LDS）",
        "shapley_efficiency_gap": "Shapley 值之和与总变化相差 {value}（efficiency gap）",
        "completeness_error": (
            "得分之和与相对基线的对数概率变化相差 {value}（completeness error）"
        ),
        "completeness_relative_error": "差值为该变化的 {value}（相对 completeness error）",
        "ig_completeness_gap": ("得分之和与相对基线的对数概率变化相差 {value}（completeness gap）"),
        "counterfactuals_found": "{value} 个经验证的编辑会改变模型的回答",
        "counterfactual_min_edits": "其中最小的改动 {value} 个部分",
        "other_metric": "{name} = {value}",
        "question": "我的消息中哪些词让你这样回答？请用引号列出它们。",
        "se_head": "被问及哪些词让它这样回答时，模型说：{answer}",
        "se_none": "它没有说出提示中的任何词。",
        "se_supported": "{span}：有依据——与{matched}重合，属于前 {k} 个主要驱动",
        "se_not_supported": "{span}：实测归因不支持{score}",
        "se_score": "（得分 {value}）",
        "se_not_in_prompt": "{span}：不在提示中",
        "se_summary": "在提示中被点名的 {checked} 个部分里，有 {supported} 个有依据。",
        "rank": "第 {rank}（共 {total} {units}）",
        "span_removal": "{rank} · 去掉这一{unit}：P({target}) {before} → {after}",
        "span_removal_bound": (
            "{rank} · 去掉这一{unit}使 log P({target}) 至少降低 {value} nats{answers}"
        ),
        "remote_answers": "；模型随后回答 {answer}",
        "at_least": "至少 {value}",
        "span_proxy": (
            "{rank} · 未发送到服务器：按代理模型 {model}，去掉这一{unit}使 log P({target}) "
            "{way} {value} nats"
        ),
        "remote_proxy": (
            "代理模型 {model} 先给出解释；服务器只为其中影响最大的 {scored}/{total} 个部分评分"
            "（与代理的 Spearman {rho}，前 3 名重合 {shared}）。"
        ),
        "span_agreement_less": (
            "{rank} · 去掉这一{unit}后，采样回答与 {target} 的相似度降低 {value}"
            "（变化的 95% 区间 {low} 至 {high}）"
        ),
        "span_agreement_more": (
            "{rank} · 去掉这一{unit}后，采样回答与 {target} 的相似度升高 {value}"
            "（变化的 95% 区间 {low} 至 {high}）"
        ),
        "remote_source": "由 {endpoint} 上的 {model} 评分：{tier}。",
        "tier_prompt-logprobs": "精确的对数概率（提示词对数概率）",
        "tier_generated-logprobs": "生成词元的对数概率，除注明的下界外均精确",
        "tier_text-only": "仅有采样回答；分数是回答变得多不像原回答（0 到 1）",
        "remote_base_agreement": "完整提示下，采样回答与原回答的相似度为 {low} 至 {high}（95%）。",
        "remote_bounds": "{total} 个数值中有 {count} 个是下界（去掉它们后模型回答不同）。",
        "remote_cost": "{requests} 个请求，{tokens} 个提示词元。",
        "remote_price": "约 ${price}。",
        "remote_rate_limited": "服务器要求等待 {count} 次（HTTP 429）。",
        "remote_tier_note": "并非每个部分都精确，因为 {note}。",
        "span_removal_raw": "{rank} · 去掉这一{unit}使 log P({target}) {way} {value} nats",
        "span_estimate": "{rank} · 按 {method}，这一{unit}使 log P({target}) {way} {value}",
        "span_salience": "{rank} · {method} {value}（无正负：只表示大小，不表示方向）",
        "span_activation": "{rank} · 激活 {value}",
        "span_no_effect": "{rank} · 无可测效果（|Δ log P| {value} < {threshold} nats）",
        "refined": "已将 {total} 行中的 {lines} 行细化为词，{words} 个词细化为词元{skipped}。",
        "refined_skipped": "；{items}",
        "degraded": "注意：{reason}。",
        "answer_record": "该 {quant} 导出在 {prompts} 个测试提示中有 {same} 个与 fp32 答案相同",
        "answer_differs": "注意：fp32 torch 对此提示的回答是 {text}（{record}）。",
        "answer_may_differ": (
            "注意：fp32 的回答可能不同：{token} 以 {prob} 胜出，在 {quant} 模型的实测误差之内"
            "（{record}；选项 reference_answer 可核对）。"
        ),
        "answer_steady": "每个答案词元的领先幅度都大于导出时实测的误差（{record}）。",
        "answer_checked": "fp32 torch 给出相同的回答（{record}）。",
        "hint_no_effect": (
            "对回答无可测效果（|Δ log P| {value} < {threshold} nats）；删去可省 {n} 个词元"
        ),
        "raises": "升高",
        "lowers": "降低",
        "sum_target": "回答{target}（P {prob}）",
        "sum_target_sampled": "回答{target}（采样回答与之相似度 {low} 至 {high}）",
        "sum_drivers": "{head}主要依赖{items}",
        "sum_salient": "{head}对{items}最敏感（{method}：无正负）",
        "sum_no_drivers": "{head}不依赖提示中的任何单一部分",
        "sum_against": "；{items}与之相反",
        "sum_against_many": "；{items}与之相反",
        "sum_end": "。",
        "sentence_gap": "",
        "sum_no_effect": "{total} {units}中有 {count} 个无可测效果。",
        "sum_all_effect": "",
        "verdict_good": (
            "忠实度：好（删去排名靠前的部分平均使回答损失 {comp} nats，只保留它们损失 {suff}）。"
        ),
        "verdict_fair": (
            "忠实度：一般（删去排名靠前的部分平均使回答损失 {comp} nats，只保留它们损失 {suff}）。"
        ),
        "verdict_weak": (
            "忠实度：弱（删去排名靠前的部分平均只使回答损失 {comp} nats，只保留它们损失 {suff}），"
            "请谨慎解读排名。"
        ),
        "verdict_none": "未测量忠实度。",
        "units_token": "个部分",
        "units_word": "个部分",
        "units_line": "个部分",
        "units_sentence": "个部分",
        "units_section": "个部分",
        "units_message": "个部分",
        "units_example": "个部分",
        "units_variable": "个部分",
        "units_auto": "个部分",
        "se_short": "模型自己的说法：点名的 {checked} 个部分中有 {supported} 个有依据。",
    },
}
