"""The model shipped with the package routes plain enquiries it has never seen.

Every text here was written for this test (none is in the training corpus)."""

from __future__ import annotations

import pytest

from classifiers.spacy_classifier import SpacyClassifier

UNSEEN = {
    "waste": [
        "Our blue recycling wheelie bin wasn't picked up on collection day, can the crew come back?",
        "Someone has dumped a mattress and bin bags in the lane behind Jubilee Terrace",
    ],
    "highways": [
        "There's a deep pothole in the middle of Station Road that cars keep swerving round",
        "The street lamp outside number 12 has been out for a fortnight, it's pitch black",
    ],
    "parking": [
        "I'd like to challenge the penalty charge notice I got in the Market Street car park",
        "How do I apply for a residents' parking permit for my new car?",
    ],
    "environmental_health": [
        "The restaurant next door plays loud music until 2am every night",
        "I found a mouse dropping in my sandwich from the cafe on the high street",
    ],
    "housing": [
        "My council flat has black mould all over the bedroom wall and the landlord repairs team never came",
        "I'm about to be made homeless next week, can the council help me find somewhere to live?",
    ],
    "council_tax": [
        "I live on my own now, can I get the single person discount on my council tax bill?",
        "I've moved house, please close my council tax account at the old address",
    ],
    "benefits": [
        "I need to apply for housing benefit because I've just lost my job and can't pay rent",
        "My council tax reduction claim was stopped, I've sent my payslips, what happens now?",
    ],
    "planning": [
        "I want to object to the planning application for a four storey block behind my garden",
        "Do I need planning permission to build a single storey rear extension?",
    ],
    "adult_social_care": [
        "My elderly father needs help getting washed and dressed, can he have a care assessment?",
        "I care for my wife who has dementia and I need some respite, what support is there?",
    ],
    "childrens_services": [
        "We are interested in becoming foster carers, how do we start the process?",
        "I'm a teacher and I'm worried a pupil is being neglected at home, who do I tell?",
    ],
    "education": [
        "When is the deadline to apply for a reception school place for September?",
        "My son has an EHCP and needs school transport, who arranges the taxi?",
    ],
    "licensing": [
        "How do I apply for a licence to sell alcohol at my new bar?",
        "I want to become a private hire taxi driver, what licence do I need?",
    ],
    "parks": [
        "A large branch has fallen off the oak tree in Victoria Park onto the path",
        "The swings in the children's play area at the recreation ground are broken",
    ],
    "leisure_libraries": [
        "Can I renew my library books online and how many can I borrow?",
        "How much is a monthly gym membership at the leisure centre and does it include swimming?",
    ],
    "electoral": [
        "I've just turned 18, how do I register to vote in the local elections?",
        "Can I get a postal vote because I'll be abroad on polling day?",
    ],
    "registrars": [
        "I need to register my baby's birth, how do I book an appointment?",
        "We'd like to book the register office for our wedding next summer",
    ],
    "information_governance": [
        "Under the Freedom of Information Act please tell me how much the council spent on consultants",
        "I think the council sent my personal details to the wrong person, this is a data breach",
    ],
    "customer_services": [
        "What are the opening hours of the council offices at the town hall?",
        "Your website keeps crashing when I try to log in to my account, can someone help?",
    ],
}


def test_shipped_model_routes_unseen_enquiries(shipped: SpacyClassifier) -> None:
    wrong = [(dept, text, shipped.classify_text(text).department)
             for dept, texts in UNSEEN.items() for text in texts
             if shipped.classify_text(text).department != dept]
    total = sum(len(t) for t in UNSEEN.values())
    assert len(wrong) <= total // 10, wrong  # at least 90% right


@pytest.mark.parametrize(("text", "department"), [
    ("bins not done again rd 14", "waste"),
    ("POTHOLE ON MILL LANE!!!", "highways"),
    ("abandoned car with no tax outside my house for 3 weeks", "parking"),
])
def test_terse_and_shouted(shipped: SpacyClassifier, text: str, department: str) -> None:
    assert shipped.classify_text(text).department == department


# The problem decides the department, not the place: each happens at a building another
# department runs (graffiti on the museum is street cleansing, not the museum's).
AT_ANOTHER_DEPARTMENTS_PLACE = [
    ("someone has spray painted tags right across the front of the museum", "waste"),
    ("bags of builders rubble tipped at the entrance to the swimming pool car park", "waste"),
    ("the primary school railings are covered in dog dirt, can someone clear it", "waste"),
    ("the road outside the swimming pool has a massive hole in it now", "highways"),
    ("all the lamps are out along the lane that leads to the library, pitch black at 5pm", "highways"),
    ("a car with no tax has been sat in the leisure centre car park since the summer", "parking"),
    ("people park on the yellow zig zags by the nursery every single morning", "parking"),
    ("the nightclub next to the library thumps music till 4am on fridays", "environmental_health"),
    ("saw a rat run across the kitchen of the cafe in the leisure centre", "environmental_health"),
    ("the lift at the museum is out of order and i use a wheelchair", "leisure_libraries"),
    ("the showers in the pool changing rooms are stone cold again", "leisure_libraries"),
    ("water pouring through my kitchen ceiling, im a council tenant by the school", "housing"),
    ("the communal front door of our flats by the library wont lock", "housing"),
]


@pytest.mark.parametrize(("text", "department"), AT_ANOTHER_DEPARTMENTS_PLACE)
def test_the_problem_not_the_place_decides(shipped: SpacyClassifier, text: str, department: str) -> None:
    prediction = shipped.classify_text(text)
    assert prediction.department == department, prediction.explanation


def test_shipped_model_card(shipped: SpacyClassifier) -> None:
    card = shipped.card
    assert card["temperature"] > 0
    assert card["metrics"]["test"]["accuracy"] >= 0.8
    assert card["training_data"]["sha256"] and card["taxonomy_version"]
    assert set(card["labels"]) == set(shipped.taxonomy.ids)


def test_gas_leak_is_flagged(shipped: SpacyClassifier) -> None:
    prediction = shipped.classify_text("strong smell of gas on the landing of our block of flats")
    assert "safeguarding" in prediction.flags
