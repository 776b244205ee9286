"""The fixed prompt set the benchmarks share (short to a few hundred tokens)."""

from __future__ import annotations

PROMPTS: dict[str, str] = {
    "capital": "What is the capital of France?",
    "haiku": "Write a haiku about the sea at night. Use the word 'lantern' and no rhyme.",
    "support": (
        "You are a support assistant for an online bookshop. Customers write in about late "
        "orders, damaged books and refunds. Be polite and brief, and always ask for the order "
        "number if the customer has not given it.\n\n"
        "Customer: My copy of 'Dune' arrived with a torn cover and I would like a replacement. "
        "What should I do?"
    ),
    "extract": (
        "Extract the names of all people mentioned in the text below and list them separated "
        "by commas.\n\nText: Yesterday Maria met her old teacher, Mr. Okafor, at the market. "
        "They talked about Maria's brother Tomas, who now works in Lisbon with his friend Aiko. "
        "Later, Maria called her aunt Beatriz to tell her the news. Beatriz said she had heard "
        "from Tomas last week, and that Aiko was planning to visit in the spring with her "
        "cousin Jonah and his dog. Maria laughed and said the dog's name was also Jonah."
    ),
}
