"""Long prompts shaped like the ones people ship: a system prompt, few-shot examples, retrieved
context and a question, one idea per line. `LONG_1K` is about 1,300 tokens (about 60 lines)
with SmolLM2's chat template, `LONG_4K` about 4,000 (about 180 lines): the same system prompt
and question around more examples and more retrieved passages."""

from __future__ import annotations

SYSTEM = [
    "You are Ledger, the support assistant of Northwind Outdoor, an online shop for camping gear.",
    "Answer questions from customers about orders, deliveries, returns, refunds and warranties.",
    "Use only the policy passages in the context below; if they do not answer, say so plainly.",
    "Never invent order numbers, prices, dates or tracking links.",
    "Keep answers under 80 words, friendly and direct, and end with one concrete next step.",
    "If a customer is angry, acknowledge the problem once, then move on to the solution.",
    "Refer to the customer by first name when they give it; never ask for a password.",
    "Quote the relevant policy section number in brackets, for example [R2].",
    "Amounts are in euros; write them with two decimals and the euro sign after the number.",
    "If a question concerns safety (a gas stove, a carbon monoxide alarm), advise to stop using "
    "the product and to contact support by phone.",
]

SHOTS = [
    (
        "Customer: Hi, I'm Ana. My tent arrived without the poles. Order NW-48213.",
        "Ledger: Sorry about that, Ana. Missing parts are replaced free of charge within 30 "
        "days of delivery [W1]. I have noted order NW-48213; reply with a photo of the "
        "package contents and we will ship the poles within two working days.",
    ),
    (
        "Customer: Can I return a sleeping bag I already used for one night?",
        "Ledger: Used sleeping bags cannot be returned for hygiene reasons unless they are "
        "faulty [R4]. If something is wrong with it, tell me what happened and we will look "
        "at a warranty claim instead.",
    ),
    (
        "Customer: Where is my parcel? It has been nine days. Order NW-50977.",
        "Ledger: Standard delivery takes three to five working days [D1], so nine days is too "
        "long. I have asked the carrier to trace order NW-50977; you will get an update by "
        "email within 24 hours, and a refund of the shipping fee if it is lost.",
    ),
    (
        "Customer: The zip on my backpack broke after two months. What can I do?",
        "Ledger: Zips are covered by our two-year warranty [W2]. Send us a photo of the "
        "broken zip and your order number, and we will offer a free repair or a replacement.",
    ),
    (
        "Customer: I ordered the wrong size of hiking boots. Can I swap them?",
        "Ledger: Yes. Unworn boots can be exchanged within 30 days [R1]; the exchange "
        "shipment is free [R3]. Start the exchange from your account page and pick the size "
        "you need.",
    ),
    (
        "Customer: Do you deliver to Switzerland, and do I pay customs?",
        "Ledger: We deliver to Switzerland in five to eight working days [D3]. Customs and "
        "import VAT are paid by the recipient on delivery [D4]; the carrier will collect them.",
    ),
    (
        "Customer: My refund has not arrived yet. I returned the stove two weeks ago.",
        "Ledger: Refunds are issued within five working days after the return reaches our "
        "warehouse [R5], and banks may take three more days. Send me the return tracking "
        "number and I will check where it is.",
    ),
    (
        "Customer: The gas stove smells of gas even when it is off.",
        "Ledger: Please stop using the stove now and keep it outside, away from flames. Call "
        "our support line so we can arrange a safe collection and a replacement [S1].",
    ),
    (
        "Customer: Can I pay with an invoice and settle it later?",
        "Ledger: Payment by invoice is available to registered customers for orders up to "
        "500.00 € [P2]; it is due within 14 days. Choose 'invoice' at checkout.",
    ),
    (
        "Customer: I got two identical tents instead of one. Should I send one back?",
        "Ledger: Thanks for telling us. Please keep it packed; we will email you a prepaid "
        "return label within one working day, and you will not be charged for the extra tent "
        "[R6].",
    ),
]

PASSAGES = [
    [
        "[R1] Returns and exchanges: unused items in their original packaging may be returned "
        "or exchanged within 30 days of delivery.",
        "Items marked 'final sale' cannot be returned unless they are faulty.",
        "The 30 days start on the day the carrier records the delivery.",
    ],
    [
        "[R2] Refund method: refunds go back to the original payment method.",
        "Gift cards are refunded as a new gift card code, valid for three years.",
        "Shipping fees are refunded only when the whole order is returned within 14 days.",
    ],
    [
        "[R3] Return shipping: returns from Germany, Austria and the Netherlands are free with "
        "the prepaid label from the customer's account page.",
        "Returns from other countries cost 6.95 €, deducted from the refund.",
        "Exchanges are shipped free of charge in every country we deliver to.",
    ],
    [
        "[R4] Hygiene items: sleeping bags, sleeping mats, water bladders and cookware that "
        "have been used cannot be returned unless they are faulty.",
        "Faulty items fall under the warranty rules in section W.",
    ],
    [
        "[R5] Refund timing: refunds are issued within five working days after the return "
        "reaches our warehouse in Kassel.",
        "Banks and card issuers may need up to three further working days to show the refund.",
        "Customers receive an email when the refund is issued.",
    ],
    [
        "[R6] Wrong or duplicate items: if we sent an item by mistake, we collect it at our "
        "cost with a prepaid label sent by email within one working day.",
        "The customer is never charged for an item sent by mistake.",
    ],
    [
        "[D1] Delivery times: standard delivery within Germany takes three to five working days; "
        "express delivery takes one to two working days and costs 9.90 €.",
        "Orders placed before 2 pm on a working day leave the warehouse the same day.",
    ],
    [
        "[D2] Lost parcels: a parcel counts as lost when tracking shows no movement for seven "
        "working days.",
        "We then ask the carrier for a trace and, if it is not found within five working days, "
        "send a replacement or refund the order, including shipping.",
    ],
    [
        "[D3] International delivery: we deliver to all EU countries, Switzerland, Norway and "
        "the United Kingdom.",
        "Delivery to Switzerland and Norway takes five to eight working days; to the United "
        "Kingdom four to seven.",
    ],
    [
        "[D4] Customs: for deliveries outside the EU, customs duties and import VAT are paid by "
        "the recipient to the carrier on delivery.",
        "Refused parcels are returned to us and refunded minus the return shipping cost.",
    ],
    [
        "[W1] Missing parts: parts missing from a delivery are sent free of charge if reported "
        "within 30 days of delivery.",
        "Customers are asked for a photo of the package contents.",
    ],
    [
        "[W2] Warranty: every product carries a two-year warranty against manufacturing "
        "defects, counted from the delivery date.",
        "Zips, seams, buckles and poles are covered; wear and tear, punctures and damage from "
        "misuse are not.",
        "Under warranty we repair the item, replace it, or refund it if neither is possible.",
    ],
    [
        "[W3] Repairs: repairs are done in our Kassel workshop within ten working days.",
        "Shipping to and from the workshop is free under warranty; outside warranty a repair "
        "quote is sent before any work starts.",
    ],
    [
        "[S1] Safety: products with a suspected gas leak, a damaged fuel line or a faulty "
        "carbon monoxide alarm must not be shipped by the customer.",
        "Support arranges a collection by a specialised carrier and a replacement.",
        "The support line is open from 8 am to 8 pm, Monday to Saturday.",
    ],
    [
        "[P1] Payment methods: we accept credit cards, PayPal, bank transfer and gift cards.",
        "Bank transfer orders are reserved for seven days and ship once the payment arrives.",
    ],
    [
        "[P2] Invoice: registered customers may pay by invoice for orders up to 500.00 €; the "
        "invoice is due within 14 days.",
        "A reminder is sent after 21 days; a fee of 5.00 € is charged from the second reminder.",
    ],
    [
        "[P3] Price changes: prices may change at any time, but the price shown at checkout is "
        "the price charged.",
        "If a product gets cheaper within 14 days of purchase, we refund the difference once "
        "per order on request.",
    ],
    [
        "[A1] Accounts: customers can see orders, returns and invoices on their account page.",
        "Deleting an account removes order history after the legal retention period of ten "
        "years for invoices.",
    ],
    [
        "[A2] Newsletter: the newsletter can be cancelled with the link at the end of every "
        "issue; cancellation takes effect within 48 hours.",
        "New subscribers receive a 10 % voucher valid for 30 days on full-price items.",
    ],
    [
        "[G1] Gift cards: gift cards are valid for three years from purchase and can be used "
        "for several orders.",
        "They cannot be exchanged for cash, and a lost code can be blocked and reissued once.",
    ],
    [
        "[G2] Rentals: tents and stoves can be rented for one to three weeks from April to "
        "October; the deposit is 100.00 € per item.",
        "Rented items are checked on return, and the deposit is refunded within five working "
        "days if nothing is damaged.",
    ],
    [
        "[C1] Complaints: a complaint about a support answer goes to the team lead, who "
        "replies within three working days.",
        "Customers may also use the EU online dispute resolution platform.",
    ],
    [
        "[C2] Reviews: customers may review products they bought; reviews are checked for "
        "personal data before publication.",
        "Reviews are never removed because they are negative.",
    ],
    [
        "[E1] Environment: packaging is made of recycled cardboard and paper tape.",
        "Customers may return packaging with their next return for reuse; no plastic fill is used.",
        "Products returned unused are resold; faulty products are repaired or recycled.",
    ],
]

QUESTION = [
    "Customer: Hello, I'm Jonas. I bought a two-person tent five weeks ago (order NW-61544).",
    "Last weekend one of the poles snapped while I was setting it up in light wind.",
    "I have not damaged it myself, and I still have the box.",
    "Do I get a new pole for free, and how long will it take?",
]


def build(shots: int, passages: int) -> str:
    """The prompt text: system prompt, `shots` examples, `passages` policy passages, question."""
    lines = ["# System", *SYSTEM, "", "# Examples"]
    for question, answer in SHOTS[:shots]:
        lines += [question, answer]
    lines += ["", "# Context (retrieved policy passages)"]
    for passage in PASSAGES[:passages]:
        lines += passage
    lines += ["", "# Conversation", *QUESTION, "Ledger:"]
    return "\n".join(lines)


def _long_4k() -> str:
    """About 4,000 tokens: the passages twice over as two retrieved sets (ranked, then
    re-ranked), as retrieval pipelines often repeat context, with all examples."""
    lines = ["# System", *SYSTEM, "", "# Examples"]
    for question, answer in SHOTS:
        lines += [question, answer]
    for title in ("# Context (top passages)", "# Context (re-ranked, with neighbours)"):
        lines += ["", title]
        for passage in PASSAGES if "top" in title else reversed(PASSAGES):
            lines += passage
    lines += ["", "# Earlier conversation"]
    for question, answer in SHOTS[:8]:
        lines += [question.replace("Customer", "Customer (earlier)"), answer]
    lines += ["", "# Conversation", *QUESTION, "Ledger:"]
    return "\n".join(lines)


LONG_1K = build(shots=6, passages=11)
LONG_4K = _long_4k()
LONG_PROMPTS = {"long_1k": LONG_1K, "long_4k": LONG_4K}
