# ruff: noqa: E501 - one problem per line reads better than wrapped strings
"""Corpus wave 9: the problem decides the department, not the place it happens.

Run ``python classifiers/data/wave9.py`` to (re)write ``corpus/<department>-wave9.jsonl``.

Residents say where a problem is before they say what it is, and the places they name are
often another department's buildings: graffiti on the library wall, a pothole outside the
school, rats behind the leisure centre, cars on the zig-zags by the nursery, a broken lift in
the flats by the park. A model that has learnt "library" means leisure and libraries sends the
graffiti there. This wave writes each street department's problems at the places other
departments run (library, leisure centre, swimming baths, school, community centre, cemetery,
allotments, council flats, car park, health centre), and, from the other side, the places' own
services (the library's opening hours, the pool's showers, the lift inside the library, the pay
machine in the car park), so that the problem, not the place, carries the label. Two money
boundaries are written from both sides too: what a tenant owes or is charged (rent account,
arrears, service charges) is housing, what pays the rent for them (housing benefit, rent rebate,
discretionary housing payments, the housing costs in Universal Credit) is benefits.

Problems are rendered with wave 8's registers (``wave8.render``: terse, typo, US 311, rambling,
elderly, angry, second-language, follow-up, chat and report-title voices). Every word was
written for this project: no resident's report was copied from any dataset; streets are
invented and there are no names, addresses or number plates. Sources are per problem, so dev
holds out whole problems.
"""

from __future__ import annotations

import json
import random

from wave8 import OUT, rows_for

WAVE = "wave9"

# short UK words | a UK resident's sentence | a US 311 caller's words
PROBLEMS: dict[str, list[str]] = {
    "waste": [
        "graffiti library wall | someone has sprayed graffiti all over the back wall of the library | graffiti all over the back wall of the public library",
        "tags on the leisure centre | the leisure centre has been tagged top to bottom overnight | rec center building tagged with graffiti overnight",
        "rude graffiti school wall | there is rude graffiti on the wall outside the primary school where the kids line up | obscene graffiti on the wall outside the elementary school",
        "graffiti cemetery gates | the cemetery gates and the chapel wall have been sprayed with paint | graffiti sprayed on the cemetery gates",
        "mural painted on the baths | a big painted picture of something rude has gone up on the side of the swimming baths | somebody painted an obscene mural on the side of the public pool",
        "fly tipping library car park | a pile of rubble and black bags has been dumped in the corner of the library car park | construction debris and trash bags dumped in the library parking lot",
        "mattress behind the community centre | two mattresses and a sofa dumped behind the community centre | mattresses and a couch dumped behind the community center",
        "rubbish dumped at the allotment gate | someone has tipped garden waste and bags of rubbish at the allotment gates | yard waste and trash dumped at the community garden gate",
        "litter round the school | the streets round the school are covered in crisp packets and cans every afternoon | litter all over the streets around the high school every afternoon",
        "litter bin full outside library | the litter bin outside the library is overflowing onto the steps | trash can outside the library overflowing onto the steps",
        "dog mess outside the school gates | dog mess all over the path outside the school gates, kids treading it in | dog poop all over the sidewalk by the school entrance",
        "dog fouling cemetery path | people are letting their dogs foul on the paths in the cemetery | dog waste all over the paths in the cemetery",
        "canisters in the leisure centre car park | loads of little silver gas canisters left all over the car park behind the leisure centre every weekend | hundreds of nitrous canisters left in the lot behind the rec center every weekend",
        "needles behind the health centre | used needles on the ground behind the health centre by the bins | syringes on the ground behind the clinic",
        "broken glass outside the pool | smashed bottles all over the pavement outside the swimming pool entrance | broken glass all over the sidewalk in front of the pool",
        "dead pigeon library steps | there is a dead pigeon on the library steps been there days | dead bird on the library steps for days needs removing",
        "rubbish at the bus station | the bus station is filthy, litter and food everywhere | bus terminal covered in trash and food",
        "town hall steps filthy | the steps of the town hall are covered in fag ends and gum | city hall steps covered in cigarette butts and gum",
        "leaflets littering the car park | leaflets from the cars windscreens are blowing all round the multi storey | flyers blowing all over the parking garage",
        "fly posters on the school fence | posters for a club night are stuck all along the school fence | flyers pasted all along the school fence",
    ],
    "highways": [
        "pothole outside the school | huge pothole in the road right outside the school gates | big pothole in the street in front of the school entrance",
        "pothole by the leisure centre entrance | the road into the leisure centre has a pothole you could lose a wheel in | pothole on the street by the rec center entrance",
        "street light out by the library | the street light outside the library has been out for weeks | streetlight out in front of the library for weeks",
        "lights out on the path to the pool | the lamp posts on the road to the swimming baths are all out | streetlights out on the road to the public pool",
        "crossing light out by the school | the flashing beacon at the zebra crossing by the school is not working | crosswalk signal by the school not working",
        "drain blocked outside the community centre | the drain in the road outside the community centre is blocked and it floods every time it rains | storm drain clogged outside the community center, floods every rain",
        "pavement broken outside the health centre | the pavement outside the health centre is broken and lifting, an old man fell | sidewalk broken outside the clinic, elderly man fell",
        "road flooded by the cemetery | the road past the cemetery floods right across after rain | street by the cemetery floods curb to curb after rain",
        "hill to the school not gritted | the hill up to the secondary school has not been gritted and the buses cant get up | hill to the high school not salted, buses sliding",
        "kerb smashed at the library corner | the kerb on the corner by the library has been smashed by a lorry | curb broken at the corner by the library",
        "traffic lights stuck by the leisure centre | the traffic lights outside the leisure centre are stuck on red | traffic signal stuck on red outside the rec center",
        "road sign knocked down near the park gates | the road sign at the junction by the park gates has been knocked flat | street sign knocked down at the intersection by the park entrance",
        "pavement overgrown by the allotments | the pavement along the allotments is so narrow with weeds you have to walk in the road | sidewalk along the community garden overgrown, have to walk in street",
        "road markings gone outside the flats | the give way lines at the junction by the flats have worn away completely | stop line worn off at the intersection by the apartments",
    ],
    "parking": [
        "parents on the zig zags | parents park on the zig zags outside the school every morning | parents parking on the no stopping zone at the school every morning",
        "abandoned car library car park | a car with flat tyres has been left in the library car park for months | car with flat tires abandoned in the library parking lot for months",
        "pay machine broken leisure centre | the pay machine in the leisure centre car park is not working and i got a ticket | pay station at the rec center lot broken and I got a ticket",
        "ticket at the swimming pool car park | i got a parking ticket in the swimming pool car park while my son was in his lesson and the machine was broken | got a parking ticket at the pool lot while the meter was broken",
        "cars blocking the cemetery gates | cars park across the cemetery gates and the hearse could not get in | cars blocking the cemetery entrance, funeral car couldn't get in",
        "parking on double yellows by the health centre | people park on the double yellows outside the health centre all day | cars parked in the no parking zone outside the clinic all day",
        "blue badge bays at the library taken | the disabled bays outside the library are always full of cars with no badge | handicap spaces at the library always taken by cars without placards",
        "van parked across the allotment gates | a van has been parked across the allotment gates for a week so nobody can get in | van blocking the community garden gate for a week",
        "permit for the flats | how do i get a resident permit, i live in the flats by the leisure centre | how do I get a residential parking permit, I live in the apartments by the rec center",
        "caravan left in the community centre car park | a caravan has been left in the community centre car park for three weeks | camper left in the community center lot for three weeks",
        "cars on the pavement outside the school | cars park all over the pavement outside the school and the kids have to walk in the road | cars parked on the sidewalk outside the school, kids walking in the street",
        "season ticket town hall car park | how much is a season ticket for the car park by the town hall | how much is a monthly pass for the city hall parking garage",
    ],
    "environmental_health": [
        "rats behind the leisure centre | rats running round the bins behind the leisure centre | rats around the dumpsters behind the rec center",
        "mice in the school kitchen | i think there are mice in the kitchen of my sons school, he saw droppings | mice droppings in the school cafeteria",
        "cafe at the library dirty | the cafe in the library is filthy and the sandwiches were mouldy | the cafe inside the library is dirty and served moldy food",
        "food poisoning after the pool cafe | my kids were sick after eating at the cafe at the swimming baths | children got food poisoning from the snack bar at the public pool",
        "music from the community centre | the community centre has parties with loud music till 2am every weekend | loud music from the community center until 2am every weekend",
        "alarm ringing at the library | the alarm at the library has been ringing all night | burglar alarm going off all night at the library",
        "smoke from the allotments | someone on the allotments is burning plastic and the smoke is coming in our windows | someone burning trash at the community garden, smoke coming in our windows",
        "pigeons nesting at the health centre | pigeons nesting over the doors of the health centre, droppings everywhere | pigeons nesting above the clinic entrance, droppings everywhere",
        "sewage smell by the school | there is a horrible sewage smell by the school every afternoon | strong sewage odor near the school every afternoon",
        "engines idling outside the school | cars sit with their engines running outside the school gates and the fumes are awful | cars idling outside the school, fumes are terrible",
        "noise from the gym next door | the gym under my flat drops weights and plays music from 5am | the gym below my apartment plays loud music and drops weights from 5am",
        "cockroaches in the takeaway by the library | i saw cockroaches in the takeaway opposite the library | saw roaches in the takeout place across from the library",
        "wasps nest at the cemetery bench | there is a wasps nest by the bench at the cemetery and my mum got stung | wasp nest by the bench in the cemetery, my mother got stung",
        "dust from works by the health centre | the building work next to the health centre is covering everything in dust | construction dust from the site next to the clinic covering everything",
    ],
    "parks": [
        "tree on the school fence | a big branch from the council tree has come down on the school fence | large branch from the city tree fell on the school fence",
        "grass not cut by the library | the grass on the green by the library is knee high | grass on the lawn by the library is knee high",
        "cemetery grass overgrown | the grass in the cemetery is so long you cannot find the graves | grass in the cemetery so tall you can't find the graves",
        "play area by the flats broken | the swings in the play area by the flats are broken | swings at the playground by the apartments are broken",
        "hedge overgrown by the leisure centre | the council hedge along the leisure centre path is overgrown and blocks the way | hedge along the rec center path overgrown and blocking the way",
        "tree roots at the community centre | the tree outside the community centre is dying and dropping branches | dying tree outside the community center dropping limbs",
        "allotment waiting list | how long is the waiting list for an allotment | how long is the waitlist for a community garden plot",
        "pitch booking near the school | how do i book the football pitch next to the school for saturdays | how do I reserve the soccer field next to the school for saturdays",
        "bench broken at the bus station green | the bench on the green by the bus station is smashed | bench on the green by the bus terminal is broken",
        "leaves and branches in the cemetery | fallen branches and leaves all over the cemetery paths since the storm | fallen branches all over the cemetery paths since the storm",
    ],
    "housing": [
        "lift broken in the flats by the park | the lift in our block by the park has been broken for a week and i am on the ninth floor | elevator in my public housing building by the park broken for a week, I live on the 9th floor",
        "damp in my flat near the school | my council flat opposite the school is covered in black mould | mold all over my public housing apartment across from the school",
        "door entry broken flats by the library | the door entry on our block behind the library is broken so anyone can walk in | front door buzzer broken at my housing authority building behind the library",
        "leak in the council house by the cemetery | water coming through the ceiling in my council house by the cemetery | water leaking through the ceiling in my public housing unit by the cemetery",
        "heating off in the tower by the leisure centre | no heating in the tower block by the leisure centre since friday | no heat in the housing project building by the rec center since friday",
        "rent account wrong | my rent account says i am in arrears but i pay by direct debit every month | my rent ledger shows arrears but I pay by autopay every month",
        "arrears letter | got a letter saying i owe rent arrears but i have paid every week | got a late rent notice but I paid every week",
        "rent going up | how much is my rent going up in april, i am a council tenant | how much is my public housing rent going up this year",
        "service charge query | what is the service charge on my flat for, it has gone up again | what is the maintenance fee on my public housing unit for",
        "pay rent | how do i pay my rent, i have just moved into a council flat | how do I pay rent for my new public housing apartment",
        "rent refund after leaving | i have handed my council flat back and my rent account is in credit, how do i get it back | I moved out of public housing and my rent account is in credit, how do I get a refund",
        "communal lights out in the flats by the school | the lights on the stairs in our block by the school are all out | hallway lights out in the public housing building by the school",
    ],
    "benefits": [
        "housing benefit cut | my housing benefit has been cut and i cant pay the rent | my rental assistance was cut and I can't pay rent",
        "rent rebate halved | my rent rebate has been cut in half and no one has told me why, i am a council tenant | my rent subsidy was cut in half with no explanation, I live in public housing",
        "discretionary housing payment | can i get help with the shortfall in my rent, universal credit does not cover it all | can I get emergency help with the gap in my rent, my benefits don't cover it",
        "housing benefit overpayment | i have got a letter saying i was overpaid housing benefit and have to pay it back | letter saying I was overpaid rental assistance and must repay it",
        "local housing allowance rate | what is the local housing allowance for a two bed round here | what is the housing voucher payment standard for a two bedroom",
        "change of circumstances rent | my partner has moved out, how do i tell you so my housing benefit changes | my spouse moved out, how do I report it for my rental assistance",
        "housing benefit backdate | can my housing benefit be backdated, i did not know i could claim | can my rental assistance be backdated",
        "pension age help with rent | i have just reached pension age, can i still get help with my rent | I'm a senior now, can I still get help paying rent",
    ],
    "leisure_libraries": [
        "no hot water showers at the baths | no hot water in the showers at the swimming baths again | no hot water in the showers at the public pool again",
        "library opening hours | what time does the library open on a saturday | what are the library hours on saturday",
        "lift broken in the library | the lift in the library is broken and i cant get upstairs in my wheelchair | the elevator in the library is broken, can't get upstairs in my wheelchair",
        "library toilets blocked | the toilets in the library have been out of order all week | library restrooms out of order all week",
        "changing rooms dirty | the changing rooms at the leisure centre are filthy, hair and plasters everywhere | the locker rooms at the rec center are filthy",
        "gym treadmill broken | half the treadmills in the gym at the leisure centre are broken | half the treadmills at the rec center gym are broken",
        "swimming lesson booking | how do i book swimming lessons for my daughter | how do I sign my daughter up for swim lessons",
        "library wifi down | the wifi in the library keeps dropping and i need it for job applications | the library wifi keeps dropping, I need it for job applications",
        "steam room stuck on max | the steam room at the leisure centre is stuck on full heat and someone will pass out | the steam room at the rec center is stuck on max heat",
        "library fines | i have a fine on my library card for a book i returned | I have a fine on my library card for a book I returned",
        "museum closed | why is the museum closed on mondays now | why is the city museum closed on mondays",
        "pool too cold | the pool at the leisure centre has been freezing for weeks | the pool at the rec center has been freezing for weeks",
    ],
}


def main() -> None:
    rng = random.Random(9)  # noqa: S311 - a seeded corpus, not a secret
    for department, problems in sorted(PROBLEMS.items()):
        rows = rows_for(department, problems, rng, wave=WAVE)
        (OUT / f"{department}-{WAVE}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
        print(f"{department}: {len(rows)}")


if __name__ == "__main__":
    main()
