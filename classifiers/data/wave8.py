# ruff: noqa: E501 - one problem per line reads better than wrapped strings
"""Corpus wave 8: US 311 wording, the confusable boundaries written from both sides, and more
registers residents write in.

Run ``python classifiers/data/wave8.py`` to (re)write ``corpus/<department>-wave8.jsonl``.

Wave 7 (``registers.py``) rendered each street problem in six fixed frames, so every row of a
register looked alike. Real messages do not: the same pothole arrives as "pot hole lane 2 by
the lights", as a 311 request ("Pothole in travel lane, 1400 block of Kessler Ave"), as a
three-paragraph email that mentions it in passing, as a formal letter from an 84-year-old and
as a furious third complaint. This wave is written for the model to learn the task from many
shapes of the same problem:

* Every problem below is hand-written three ways: how a UK resident names it in a few words
  (often local words: estate, close, chute, verge, ginnel, bay), how they describe it in a
  sentence (the problem, not the service), and how a US 311 caller words it (trash can,
  sidewalk, curb, streetlight, catch basin, alley, block, apartment, landlord, plowing).
  The department is the one the taxonomy's descriptions give, for US wording too: a
  streetlight out is highways, an abandoned car is parking, rats in the alley are
  environmental health, no heat in an apartment is housing, a fallen limb is parks.
* Each department covers its whole range of services (the taxonomy's ``enquiries`` and
  more), and the boundaries the old model confused are written on purpose from both sides:
  pests, smells, smoke and noise are environmental health even in a council block, while
  damp, mould, leaks, heating, lifts, door entry and the caretaking of a block are housing;
  bins and dumped rubbish on an estate are waste; the road, pavement, drains and lights are
  highways, trees, grass, play areas and park furniture parks, and cars (parked, blocking,
  abandoned) parking.
* Eleven registers, each with many hand-written frames and optional parts (so no register is
  one sentence with slots): ``terse`` (a few words, location first or last or none),
  ``typo`` (lower case, no punctuation, letters dropped, swapped or doubled, SMS shorthand),
  ``us311`` (a 311 request as a caller or the 311 agent writes it), ``us_email`` (a US
  resident's email or web form, US spelling), ``ramble`` (three paragraphs, the request
  buried in the middle among other departments' words), ``elderly`` (a formal letter),
  ``angry`` (a repeated complaint, capitals and threats to call the councillor),
  ``esl`` (second-language English), ``followup`` (chasing an earlier report), ``chat``
  (web-chat lines) and ``title`` (a report form's title line, then the description). Each
  problem is rendered in seven of them chosen at random, and ``us311`` always. A question
  ("how do i book a pitch") is never chased, ranted about or "attended to": it gets only the
  registers a question fits.
* 122 whole messages written one by one (``HANDWRITTEN``, register ``hand``), in all
  these voices, for the six departments and for the departments across their boundaries
  (licensing, planning, benefits, adult social care), a few of each so the other twelve
  departments are not swamped.

Every word was written for this project: no resident's report was copied from any dataset.
Streets are invented, there are no names of real people, no real addresses and no number
plates ("the silver hatchback" stands in for one). Each row carries its ``register`` and its
``source`` (the problem it renders): training holds out whole sources for dev, so a problem
is never on both sides. The held-out ``holdout3/`` set was written separately, by hand, in
voices this script never uses (see holdout3/README.md): never train on it.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).parent / "corpus"
WAVE = "wave8"

# short UK words | a UK resident's sentence | a US 311 caller's words
PROBLEMS: dict[str, list[str]] = {
    "waste": [
        "bins not done | they never emptied our bins this week, the whole row was missed | trash was not picked up on my street this week",
        "recycling missed 3rd time | the recycling lorry has missed us for the third fortnight running | recycling cart missed again, third time this month",
        "grey bin left full | our grey bin was left full, the crew just walked past it | garbage can skipped, everyone else on the block got picked up",
        "brown bin not emptied | the garden waste bin was not emptied even though we paid for the year | yard waste not collected, bags still at the curb",
        "food caddy missed | food waste caddy not collected and now its full of maggots | compost bin not emptied, full of maggots",
        "bin lorry spilled rubbish | the bin men spilled rubbish all down the road and drove off | garbage truck spilled trash all over the street and left it",
        "bin stolen | our wheelie bin has gone missing, someone has taken it | my trash can was stolen, need a new one",
        "bin split down the side | the bin is split down the side and the lorry broke the wheel | trash cart cracked and the wheel is broken, need replacement",
        "extra bin for big family | there are seven of us and one bin is not enough, can we have a bigger one | need a second garbage cart for a large household",
        "bulky collection sofa | how do i book a collection for an old sofa and wardrobe | want to schedule a bulk item pickup for a couch and dresser",
        "fridge collection | i need an old fridge and a cooker taken away | appliance pickup for an old refrigerator and stove",
        "mattress dumped | someone has dumped two mattresses against the wall at the end of the road | illegal dumping, two mattresses left at the end of the street",
        "fly tipping in the lane | a load of rubble and bags has been tipped in the back lane | someone dumped construction debris and bags in the alley",
        "van dumping at night | a van keeps coming at night and dumping rubbish by the recycling banks | a van keeps illegally dumping trash at night by the recycling drop off",
        "tyres dumped | about fifteen tyres have been dumped on the grass by the layby | pile of old tires dumped on the side of the road",
        "litter everywhere after the weekend | the high street is covered in litter after every weekend | lots of trash and litter on the block every weekend",
        "litter bin overflowing | the litter bin by the bus stop is overflowing onto the floor | public trash can at the bus stop is overflowing",
        "dog poo everywhere | dog poo all along the pavement to the school, people dont pick it up | dog waste all over the sidewalk on the way to the school",
        "dog bin full | the dog poo bin on the corner has not been emptied for weeks | dog waste station is full and not being emptied",
        "graffiti on the wall | someone has sprayed graffiti all over the side wall of the shop | graffiti on the side of the building",
        "offensive graffiti | there is offensive graffiti with swear words on the bridge where kids walk | offensive graffiti on the overpass near the school",
        "tags on the bus shelter | the bus shelter is covered in tags and stickers | graffiti tags on the bus shelter",
        "dead badger | theres a dead badger on the verge been there days | dead animal on the side of the road, been there for days",
        "dead cat in the road | a dead cat is lying in the road outside, can someone collect it | dead cat in the street needs pickup",
        "dead fox in the garden of the empty house | a dead fox is rotting by the bins | dead raccoon by the trash cans needs removal",
        "needles in the park path | used needles on the ground by the back of the shops | syringes on the ground behind the stores",
        "street needs sweeping | our road has not been swept for months, leaves and rubbish everywhere | street sweeping has not happened on our block in months",
        "broken glass on the pavement | smashed bottles all over the pavement outside the off licence | broken glass all over the sidewalk outside the liquor store",
        "bins left out all week | the houses opposite leave their bins on the pavement all week | neighbors leave their trash cans on the sidewalk all week",
        "side waste bags | the flats put black bags out next to the bins and the gulls rip them | bags of garbage left next to the dumpster, birds ripping them open",
        "communal bins on the estate overflowing | the big bins on the estate are overflowing and nobody has come | dumpster at the complex is overflowing, not picked up",
        "bin day changed | what day are my bins now, the calendar changed | what is my new trash pickup day",
        "christmas tree collection | when do you collect real christmas trees | when is christmas tree pickup",
        "batteries and electricals | where do i take old batteries and a broken kettle | where can i drop off electronics and batteries",
        "assisted collection | i cant get the bin down the drive since my operation | i am disabled and need help getting my trash cart to the curb",
        "gum and fag ends | the precinct is disgusting with chewing gum and cigarette ends | sidewalk downtown covered in gum and cigarette butts",
        "trolleys dumped | shopping trolleys dumped in the stream and on the grass | shopping carts abandoned along the creek",
        "commercial waste on the street | the shops leave their cardboard and trade waste out on the pavement overnight | businesses putting commercial trash on the sidewalk overnight",
        "garden waste subscription | how do i sign up for the green bin this year | how do i sign up for yard waste service",
        "asbestos dumped | broken asbestos sheets dumped at the end of the track | someone dumped what looks like asbestos siding in the alley",
        "rubbish outside a house | the garden of number 9 is piled high with rubbish bags | yard full of trash bags at a house on my street",
        "leaflets and litter in the hedge | litter blown into all the hedges along the main road | trash blown into the bushes along the road",
        "vomit and mess outside the takeaway | the pavement outside the kebab shop is filthy every sunday | sidewalk outside the bar is a mess every sunday morning",
        "recycling contaminated sticker | they put a sticker on my recycling saying contaminated and left it | recycling not taken, tagged as contaminated",
        "bin chute blocked | the rubbish chute is blocked and bags are piled up on the landing | trash chute in the building is jammed",
        "abandoned bike | a bike with no wheels has been chained to the railings for months | derelict bicycle chained to a sign post for months, no wheels",
        "paint tins dumped | tins of paint dumped in the gutter and one has split all down the road | paint cans dumped at the curb, one leaking into the street",
        "trade waste contract | i have opened a cafe, how do i get a trade waste bin | i opened a restaurant, how do i get commercial trash service",
        "clinical waste collection | my sharps bin from my insulin is full, do you collect it | my sharps container is full, does the city pick it up",
    ],
    "highways": [
        "pothole | huge pothole in the road outside the school | pothole in the street in front of the school",
        "pot hole in bus lane | pot hole in the bus lane by the lights, buses swerving | pothole in the right lane near the traffic light",
        "road breaking up | the whole surface of the road is breaking up into gravel | street pavement crumbling, lots of loose gravel",
        "sunken road | the road has sunk over the trench where the gas board dug | road is sinking where the utility company dug",
        "pavement cracked | the pavement is cracked and lifting, i tripped | sidewalk cracked and uneven, tripped and fell",
        "slab loose | a loose paving slab rocks when you step on it | loose sidewalk slab, tripping hazard",
        "kerb smashed | the kerb stones have been smashed by a lorry at the corner | curb broken at the corner by a truck",
        "street light out | the street light outside has been out for a fortnight | streetlight out in front of my house",
        "several lights out | three lamps in a row are out and the road is pitch black | multiple streetlights out, the whole block is dark",
        "lamp on in daytime | the street lamp stays on all day | streetlight stays on during the day",
        "lamp post hit | a car hit the lamp column and it is leaning | light pole knocked over by a car, leaning over sidewalk",
        "exposed wires | the door on the base of the lamp post is missing and wires are showing | light pole access panel missing, exposed wires",
        "drain blocked | the drain outside is blocked and the road floods | storm drain clogged, street flooding",
        "gully full | the gully is full of silt and leaves | catch basin is clogged with leaves and dirt",
        "road flooding | the road floods under the bridge every time it rains | street floods under the overpass every rain",
        "water bubbling up | water is bubbling up out of the road | water coming up out of the street",
        "manhole lifted | a manhole cover is sticking up and clanks | manhole cover raised and loose in the road",
        "missing drain cover | the grate is missing off the drain in the footpath | missing storm drain grate on the sidewalk",
        "not gritted | the hill was not gritted and cars are sliding | our street was not salted, cars sliding on ice",
        "snow not cleared | the main road hasnt been ploughed and buses cant get up | snow plow never came down our street",
        "grit bin empty | the grit bin at the bottom of the close is empty | salt box on the corner is empty",
        "traffic lights not working | the traffic lights at the junction are all out | traffic signal out at the intersection",
        "lights stuck on red | the lights are stuck on red and cars are jumping them | traffic signal stuck on red",
        "pedestrian crossing button broken | the button on the crossing doesnt work and the green man never comes | crosswalk button broken, walk signal never comes on",
        "crossing lines faded | the zebra crossing stripes have faded | crosswalk paint faded and hard to see",
        "give way lines worn | the white lines at the junction are worn off | stop bar and lane lines worn away at intersection",
        "sign knocked down | the road sign has been knocked down at the roundabout | stop sign knocked down",
        "street name sign missing | the street name sign has been missing for a year | street name sign missing",
        "sign hidden | the speed limit sign is hidden behind a bush | speed limit sign blocked by overgrown bush",
        "speeding need calming | cars speed down the road, we need speed humps | need speed bumps, cars speeding on our block",
        "dropped kerb application | how do i apply for a dropped kerb for my drive | how do i get a curb cut for my driveway",
        "road works mess | the road works left the road full of bumps | contractors left the street bumpy after roadwork",
        "temporary lights no workers | temporary lights but nobody working for days | construction signals up but no crew working for days",
        "skip on the road no lights | a skip on the road has no lights on it at night | dumpster in the street with no reflectors at night",
        "scaffold blocking footpath | scaffolding has closed the whole footpath | scaffolding blocking the entire sidewalk",
        "mud on the road | lorries from the building site leave mud on the road | construction trucks tracking mud onto the street",
        "diesel spill | diesel spilt on the roundabout, very slippery | oil slick on the road, slippery",
        "bollard down | one of the bollards at the end of the road has been knocked out | bollard knocked over at the end of the street",
        "bridge railing broken | the railing on the footbridge is broken | handrail on the pedestrian bridge is broken",
        "hedge over the footpath | a garden hedge is so overgrown you have to walk in the road | overgrown bushes from a yard blocking the sidewalk",
        "crash barrier damaged | the crash barrier on the bypass is bent | guardrail damaged on the highway",
        "cycle lane potholes | the cycle lane is full of holes | bike lane full of potholes",
        "no dropped kerb for wheelchair | there is no dropped kerb at the crossing for wheelchairs | no curb ramp at the corner for wheelchairs",
        "underpass lights out | the underpass lighting is out | lights out in the pedestrian tunnel",
        "road sign dirty | the road signs are filthy and you cant read them | signs are dirty and unreadable",
        "hydrant leaking into the road | water pouring out of the hydrant into the road all night | fire hydrant leaking, water running down the street",
        "skip permit | do i need a permit to put a skip on the road outside my house | do i need a permit to put a dumpster on the street in front of my house",
        "street party road closure | how do we close our road for a street party | how do we get a block party street closure",
        "tactile paving missing | the bumpy paving at the crossing has come up and blind people cant find the edge | tactile strips at the crosswalk missing, blind pedestrians cant find the curb",
        "pavement not cleared of snow in town | the pavements in the town centre are sheet ice, nobody cleared them | sidewalks downtown not cleared of snow and ice",
        "sewage coming up the road drain | sewage is coming up out of the drain in the road after the rain | sewer backing up out of the catch basin onto the street",
    ],
    "parking": [
        "car on pavement | a car parks on the pavement every night so prams go in the road | car parked on the sidewalk every night",
        "blocked drive | someone has parked across my drive and i cant get out | car blocking my driveway",
        "dropped kerb blocked | a van is parked over my dropped kerb again | van parked blocking my curb cut",
        "abandoned car | a car has been left in our road for weeks with flat tyres | abandoned vehicle on the street for weeks, flat tires",
        "untaxed car | theres an untaxed car that hasnt moved since summer | car with expired tags hasnt moved in months",
        "burnt out car | a burnt out car has been left on the waste ground | burned out car left on the lot",
        "car dumped no plates | a car with no plates has been dumped in the layby | car with no license plate abandoned on the road",
        "double yellows | cars park on the double yellows by the junction all day | cars parking in the no parking zone at the corner all day",
        "school parking | parents park on the zigzags and pavement at school time | parents parking in the school zone and blocking the crosswalk",
        "disabled bay misuse | a car with no badge is always in the disabled bay | car without a handicap placard always in the accessible spot",
        "apply disabled bay | can i have a disabled bay outside my house | request a disabled parking space in front of my home",
        "resident permit | how do i apply for a residents parking permit | how do i get a residential parking permit",
        "visitor permit | how do i get visitor permits for my family | need guest parking passes for my family",
        "permit not arrived | paid for my permit three weeks ago and it hasnt come | paid for my parking permit but never received it",
        "pcn appeal | i want to appeal a parking ticket, the sign was hidden | i want to contest a parking ticket, the sign was blocked",
        "ticket but paid | i got a ticket even though i paid on the app | got a parking citation even though i paid through the app",
        "pay machine broken | the pay and display machine is broken and wont take cards | parking meter is broken and wont take cards",
        "meter ate coins | the meter took my coins and gave no ticket | parking meter took my quarters and gave no time",
        "car park barrier | the barrier at the car park wont lift | parking garage gate arm is stuck",
        "car park lighting and safety | the car park is dark and people hang about | the parking lot is dark and people loiter at night",
        "lorry parked overnight | a lorry parks in the street every night and blocks the view | semi truck parked overnight on a residential street",
        "caravan on the road | a caravan has been parked on the road for months | rv parked on the street for months",
        "boat trailer | a boat on a trailer has been left in the bay for weeks | boat trailer parked on the street for weeks",
        "fire hydrant blocked | cars park right over the fire hydrant marker | car parked in front of a fire hydrant",
        "parking in bike lane | delivery vans park in the cycle lane | delivery trucks double parked in the bike lane",
        "double parked | cars double park outside the shop and block the road | cars double parking outside the store",
        "commuters all day | commuters park all day and residents cant park | commuters take all the street parking all day",
        "wardens never come | the wardens never come to our road | parking enforcement never patrols our street",
        "ev bay blocked | a petrol car is parked in the charging bay | non electric car parked at the ev charger",
        "car for sale on the street | someone sells cars from the road outside my house | someone selling cars parked on the street",
        "parking on the verge | cars park on the grass verge and churn it up | cars parking on the grass strip and tearing it up",
        "parking on the corner | cars park right on the corner and the bin lorry cant turn | cars parked at the corner, garbage truck cant get through",
        "taxi rank cars | private cars keep parking in the taxi rank | cars parking in the taxi stand",
        "clamped | my car was clamped in the council car park | my car got booted in the city lot",
        "towed | my car was towed and i dont know where it is | my car was towed, where is the impound",
        "car park charges | how much is it to park in the town centre car park on sunday | how much does the downtown garage cost on sundays",
        "season ticket | can i buy a season ticket for the station car park | monthly parking pass for the train station lot",
        "motorbike on the footway | a motorbike is parked on the footway chained to the railings | motorcycle parked on the sidewalk chained to the fence",
        "bailiff letter for parking | a bailiff letter came for a parking fine i never got | got a collections letter for a parking ticket i never received",
        "parking bay suspended | can i suspend the bay outside for a removal van | need to reserve street parking for a moving truck",
        "car parked on the estate grass | people park on the grass on the estate and block the path | cars parking on the lawn at the apartment complex, blocking the path",
        "vehicle with smashed windows left | a car with smashed windows has been left outside for a month | vehicle with broken windows abandoned on the block for a month",
        "permit zone consultation | when is the consultation for a residents parking zone on our road | when is the hearing on the residential permit zone for our street",
        "ticket machine no coins | the pay machines in the car park only take coins | parking kiosks in the lot only take coins",
    ],
    "parks": [
        "branch down | a big branch has come down in the park | large tree limb fell in the park",
        "tree down across path | a tree has fallen across the path by the pond | fallen tree blocking the trail",
        "limb hanging | a limb is hanging off the council tree and could drop on someone | tree limb hanging over the sidewalk, could fall",
        "tree needs cutting back | the council tree outside is blocking all our light | city tree needs trimming, blocking light into my house",
        "tree touching the house | branches from the tree on the green are touching our roof | tree branches from the city tree touching my roof",
        "dead tree | the tree on the corner of the green is dead and rotting | dead tree on the city lot, rotten",
        "stump left | the tree was felled but the stump was left sticking up | tree removed but stump left, please grind it",
        "tree planting | can a tree be planted in the empty pit outside | request a street tree planting in an empty tree well",
        "roots in my garden | roots from the council tree are coming into my garden | roots from the park tree coming into my yard",
        "swing broken | the swing in the playground is broken | swing at the playground is broken",
        "slide damaged | the slide in the play area has a sharp edge | playground slide has a sharp broken edge",
        "play area glass | broken glass all over the play area | broken glass in the playground",
        "play area gate | the gate to the play park doesnt shut and dogs get in | playground gate broken, dogs getting in",
        "grass not cut | the grass on the green has not been cut for weeks | grass in the park has not been mowed in weeks",
        "verge grass long | the grass on the verge is waist high | grass on the median is overgrown",
        "weeds on the paths in the park | weeds are growing all over the paths in the park | weeds taking over the park walkways",
        "park bench broken | a bench in the park is broken | broken bench in the park",
        "picnic table | the picnic tables by the lake have been burnt | picnic tables in the park were burned",
        "park toilets | the park toilets are filthy and locked | park restrooms locked and dirty",
        "park lights | the lights on the path through the park are out | lights out on the park path",
        "park fence | the fence round the park is broken | park fence broken",
        "pond | the pond is full of algae and rubbish | park pond full of algae",
        "football pitch booking | how do i book a football pitch for saturday mornings | how do i reserve a soccer field for saturday mornings",
        "pitch lines | the pitches havent been marked out this season | ball fields not lined this season",
        "goalposts | the goalposts are broken on the rec | goal posts broken at the rec field",
        "basketball hoop | the basketball hoop has no net and the backboard is cracked | basketball court hoop broken",
        "tennis court net | the tennis court nets are missing | tennis court nets missing",
        "skate park | the skate park ramp is cracked | skate park ramp damaged",
        "allotment waiting list | how long is the allotment waiting list | how long is the community garden waitlist",
        "allotment water | the water troughs at the allotments have been turned off | no water at the community garden plots",
        "cemetery grounds | the grass in the cemetery is overgrown round the graves | cemetery grass not cut around the graves",
        "cemetery paths | the paths in the cemetery are uneven and my mum fell | cemetery walkways uneven, elderly fell",
        "hedge on the green | the hedge on the council green needs cutting | hedge on city property needs trimming",
        "knotweed | japanese knotweed growing on the park edge | invasive plants taking over the park edge",
        "brambles over the path | brambles have grown over the riverside walk | overgrown thorny bushes on the river trail",
        "trail muddy | the path across the field is a mudbath | park trail flooded and muddy",
        "motorbikes on the field | motorbikes ride over the playing field | dirt bikes tearing up the park field",
        "splash pad | when does the splash park open | when does the splash pad open",
        "outdoor gym | the outdoor gym equipment in the park is broken | fitness equipment in the park broken",
        "geese mess | goose droppings all over the grass by the lake | geese droppings all over the park lawn",
        "memorial bench | can we put a memorial bench in the park for my dad | request a memorial bench in the park",
        "park gates not locked | the park gates arent locked at night and people gather | park gates left open at night, people hanging out",
        "leaves from park trees | leaves from the park trees are blocking our gutters | leaves from the park trees filling my gutters",
        "event in the park | can we hold a fun day on the field | request a permit for a picnic shelter in the park",
        "fishing in the park lake | do i need a permit to fish in the park lake | do i need a permit to fish at the park pond",
        "bbq in the park | are barbecues allowed in the park, people scorched the grass | are grills allowed in the park, people burned the grass",
        "allotment rent | how much is the allotment rent this year and when is it due | how much is the community garden plot fee this year",
        "dog walkers with lots of dogs | professional dog walkers bring ten dogs at once onto the playing field | dog walkers bringing ten dogs at a time onto the ball field",
    ],
    "environmental_health": [
        "rats in the garden | rats running across our garden from the back fence | rats in my backyard",
        "rats in the alley | rats all down the alleyway behind the shops | rodents in the alley behind the stores",
        "mice in the house | mice in the kitchen, droppings in the cupboards | mice in my home, droppings in the cabinets",
        "cockroaches | cockroaches everywhere in the kitchen at night | roaches in the kitchen at night",
        "bed bugs | bed bugs in the bedroom and bites on the kids | bed bugs in the bedroom",
        "wasp nest | wasps nest in the wall by the back door | wasp nest by my back door",
        "pigeons | pigeons nesting on the balcony and mess everywhere | pigeons roosting on the balcony, droppings everywhere",
        "neighbour feeding pigeons | the neighbour feeds pigeons and there are hundreds | neighbor feeding pigeons, hundreds of birds",
        "fleas | fleas in the flat we just moved into | fleas in the unit we moved into",
        "loud music | loud music from next door every night until 3am | loud music from neighbors every night until 3am",
        "noise from the bar | music from the bar on the corner shakes our windows | noise from the bar on the corner, music shaking windows",
        "dog barking | the dog next door barks all day while they are at work | neighbor's dog barking all day",
        "house alarm | a house alarm has been going off for six hours | a car alarm has been going off for hours",
        "building noise early | builders start drilling at 6am on sundays | construction noise starting 6am on sundays",
        "generator noise | a generator runs all night at the takeaway | generator running all night behind the restaurant",
        "parties upstairs | parties in the flat above every weekend | loud parties in the apartment upstairs every weekend",
        "deliveries at night | lorries unloading at the supermarket at 4am | trucks unloading at the grocery store at 4am",
        "fireworks every night | fireworks being let off every night at midnight | fireworks going off every night",
        "bonfire smoke | neighbour burning rubbish in the garden every day | neighbor burning trash in the backyard",
        "wood burner smoke | smoke from a wood burner pouring into our house | smoke from a neighbor's wood stove coming into our house",
        "black smoke from the yard | black smoke from a scrap yard burning cables | black smoke from a junkyard burning wire",
        "smell from the restaurant drains | the drains behind the restaurant stink of rotten fat | foul odor from the restaurant's grease trap",
        "takeaway extractor smell | the takeaway extractor blows cooking fumes into our bedroom | restaurant exhaust fan blowing fumes into our bedroom",
        "sewage smell | a smell of sewage hangs over the street | sewer smell on the block",
        "factory smell | a chemical smell from the factory makes us cough | chemical odor from the plant making us cough",
        "dirty restaurant | the restaurant kitchen is filthy and i saw a mouse | unsanitary restaurant, saw a mouse in the kitchen",
        "food poisoning | got food poisoning from the chicken shop | got sick after eating at a fast food place",
        "out of date food | the shop sells out of date meat | store selling expired meat",
        "hygiene rating | the cafe has no hygiene rating in the window | restaurant not showing its inspection grade",
        "register food business | how do i register to sell food from my kitchen | how do i get a permit to sell food from my home kitchen",
        "staff smoking in kitchen | staff smoke in the kitchen of the takeaway | workers smoking in the kitchen at the diner",
        "dust from building site | dust from the site covers everything | construction dust covering our cars and windows",
        "air pollution | the air by the main road is thick with fumes | air quality terrible near the highway",
        "idling engines | buses idle outside the school for ages | buses idling outside the school",
        "polluted stream | the stream has gone white and smells of chemicals | creek turned white and smells like chemicals",
        "private water supply | can you test the water from our well | request testing of our private well water",
        "hoarder smell | a smell and flies coming from a hoarders house | foul smell and flies from a hoarder's house",
        "manure smell | the smell from the farm muck spreading is unbearable | manure smell from the farm unbearable",
        "security light | a neighbours security light shines into our bedroom all night | neighbor's floodlight shining into my bedroom all night",
        "smoking shelter fumes | smoke from the pub smoking area comes in our window | cigarette smoke from the bar patio coming in our window",
        "seagulls | gulls nesting on the roof screaming and diving at people | seagulls nesting on the roof and attacking people",
        "flies | flies everywhere from the neighbours garden full of food waste | flies everywhere from next door's yard",
        "foxes | foxes under the shed screaming every night | foxes living under the shed",
        "squirrels in loft | squirrels in the roof space | squirrels in the attic",
        "karaoke pub | karaoke from the pub until 1am in the week | karaoke from the bar until 1am on weeknights",
        "chimney from takeaway soot | soot from the pizza oven chimney lands on our washing | soot from the pizza place's chimney falling on our laundry",
        "private drain overflowing in the garden | the shared drain at the back of the houses is blocked and sewage is coming up in my garden | private sewer line backed up, sewage in my backyard",
        "septic tank leaking next door | the septic tank next door overflows and runs into our garden | neighbor's septic system overflowing into my yard",
        "gym noise | the gym under our flat drops weights and plays music from 6am | gym downstairs dropping weights and blasting music from 6am",
        "floodlights from the sports club | the floodlights at the sports club shine into our houses until 10pm | stadium lights from the sports club shining into homes until 10pm",
        "tattoo and piercing registration | do i need to register with the council to do piercings from my salon | do i need a health permit to do piercing at my salon",
        "dead animal smell in the wall | there is a smell of something dead in the wall cavity and flies coming out of the socket | smell of a dead animal in the wall, flies coming out",
        "chickens next door attracting rats | next door keeps chickens and throws grain everywhere and now we have rats | neighbor's chickens attracting rats to our yard",
    ],
    "housing": [
        "mould in bedroom | black mould all over the bedroom wall in our council flat | mold all over the bedroom wall in my apartment",
        "damp | the walls are damp and the wallpaper is peeling | walls are damp and paint peeling in my unit",
        "condensation | water running down the windows every morning and the sills are rotting | condensation on the windows every morning, rotting frames",
        "leak from above | water coming through the ceiling from the flat above | water leaking through my ceiling from the apartment above",
        "roof leak | the roof leaks over the back bedroom | roof leaking into the bedroom",
        "no heating | no heating in the flat for five days | no heat in my apartment for five days",
        "no hot water | no hot water since monday | no hot water in the apartment since monday",
        "boiler | the boiler keeps cutting out | boiler keeps shutting off, landlord not fixing",
        "radiator leaking | the radiator is leaking onto the floor | radiator leaking water onto the floor",
        "toilet blocked | the toilet is blocked and wont flush | toilet clogged and not flushing, landlord ignores",
        "sink leaking | the pipe under the kitchen sink is leaking | pipe under the kitchen sink leaking",
        "front door | the front door lock is broken and wont lock | apartment front door lock broken",
        "window broken | the bedroom window wont close | bedroom window wont close, landlord refuses",
        "electrics | the lights keep tripping and a socket is burnt | outlets sparking and breaker keeps tripping",
        "lift broken | the lift in our block has been out for a week | elevator in my building out for a week",
        "door entry | the entry door to the block is broken and anyone can walk in | building entry door broken, strangers getting in",
        "stairwell lights | the lights in the stairwell of the block are out | hallway lights out in my building",
        "communal cleaning | the stairs in the block havent been cleaned for weeks | common areas in the building never cleaned",
        "caretaker | the caretaker hasnt been round the estate for a month | building super hasnt been around for a month",
        "rubbish on the landing | someone has left bags and an old chair on our landing | junk left in the building hallway by a tenant",
        "repair not done | i reported a repair six weeks ago and nobody came | requested a repair six weeks ago, nobody came",
        "kitchen units | the kitchen cupboards are falling off the wall | kitchen cabinets falling off the wall",
        "bathroom | the bath panel is broken and the floor is rotten | bathroom floor rotting around the tub",
        "gutter | the gutter on our council house is hanging off | gutter falling off the house",
        "fence council house | the fence at our council house blew down | fence at my rental blew down",
        "adaptations in my council flat | i need a walk in shower and rails fitted in my council flat | need grab bars and a walk in shower installed in my public housing unit, disabled tenant",
        "housing register | how do i get on the council housing list | how do i apply for public housing",
        "housing band | why has my band gone down on the housing register | why did my priority on the housing waitlist change",
        "overcrowded | six of us in a two bed flat | six people in a two bedroom apartment, need bigger place",
        "transfer | i want a transfer to a ground floor flat | request transfer to a first floor unit",
        "mutual exchange | how do i do a mutual exchange | how do i swap my public housing unit",
        "homeless tonight | i have nowhere to sleep tonight | i am homeless and have nowhere to stay tonight",
        "eviction notice | my landlord gave me two weeks notice to leave | landlord gave me an eviction notice",
        "illegal eviction | landlord changed the locks while i was out | landlord locked me out of my apartment",
        "temporary accommodation | the temporary room we are in has mould and no cooker | emergency shelter room has mold and no stove",
        "rent | how do i pay my rent | how do i pay my rent to the housing authority",
        "arrears | i am behind on my rent and scared of losing the flat | behind on rent, afraid of eviction",
        "succession | my dad died, can i stay in his council house | my father passed, can i take over his lease",
        "antisocial tenant | the tenant below is dealing drugs and threatens people | tenant downstairs dealing drugs and threatening residents",
        "private landlord damp | my private landlord wont fix the damp | my landlord wont fix the mold",
        "landlord no heat private | my landlord has not fixed the heating for a month | landlord has not restored heat for a month",
        "leaseholder service charge | my service charge as a leaseholder has doubled | my condo maintenance fee from the housing authority doubled",
        "keys for new tenancy | when do i get the keys to my new council flat | when do i get keys to my new unit",
        "garage rent | can i rent a council garage | can i rent a garage from the housing authority",
        "smoke alarm | the smoke alarm in the flat is beeping and broken | smoke detector in my unit broken",
        "rough sleeper in the doorway | a man has been sleeping in the shop doorway in this cold, can someone help him | homeless man sleeping in the store entrance in the cold, needs help",
        "decant during works | we have been told to move out while the block is repaired, where will we go | housing authority says we must relocate during repairs, where will we go",
        "subletting council flat | i think the council flat next door is being sublet, different people every few weeks | i think my neighbor is illegally subletting his public housing apartment",
        "fire doors in the block | the fire doors on our landing are wedged open and one wont shut | fire doors in my building wont close properly",
        "sheltered housing alarm | the pull cord alarm in my sheltered flat doesnt work | emergency pull cord in my senior housing unit not working",
        "pet in council flat | can i have a dog in my council flat | am i allowed a dog in my public housing apartment",
        "heating charge on the rent | why has the heating charge on my rent gone up when the heating never works | why did the heat charge on my rent go up when the heat never works",
    ],
}

# The confusable boundaries, written from both sides: each line shares its words with another
# department's (named in the comment) and is labelled by what the council would do about it.
BOUNDARIES: dict[str, list[str]] = {
    "waste": [
        # vs environmental_health: the rubbish is the problem, clearing it is the ask
        "rubbish dumped bringing rats | bags dumped behind the shops are bringing rats, can they be cleared away | trash dumped behind the stores attracting rats, needs to be cleaned up",
        "bins not emptied and stinking | the bins were missed and now they stink and are full of maggots | garbage not picked up, cans smell and have maggots",
        # vs housing: the estate's bins and dumped rubbish outside are waste
        "estate bin store not emptied | the bin store on our estate has not been emptied in two weeks | dumpsters at the housing project not emptied in two weeks",
        "sofa dumped outside the block | someone dumped a sofa and a fridge on the grass outside our block | couch and fridge dumped on the lawn outside my apartment building",
        # vs highways: litter and leaves on the road are street cleaning
        "leaves piled on the pavement | the pavements are thick with wet leaves and nobody sweeps them | sidewalks covered in wet leaves, need sweeping",
        "glass in the road after a crash | glass and bits of car left in the road after an accident | debris and glass left in the street after a crash",
        # vs parks: dog mess and graffiti are waste wherever they are
        "dog mess on the playing field | the playing field is covered in dog mess | dog waste all over the ball field",
        "graffiti on the park wall | the park wall has been sprayed with graffiti | graffiti on the wall at the park",
    ],
    "highways": [
        # vs waste: the drain, not the rubbish
        "leaves blocking the drain | leaves have blocked the drain and the road is flooding | leaves clogging the storm drain, street flooding",
        # vs parks: the pavement, not the tree
        "roots lifting the pavement | tree roots have pushed the pavement up into a ridge | tree roots lifting the sidewalk, trip hazard",
        # vs housing: the public road beside an estate
        "pothole on the estate road | the road into the estate is full of potholes | potholes on the road into the housing complex",
        "street light out by the flats | the street light outside the flats is out | streetlight out outside my apartment building",
        # vs parking: the markings and the kerb themselves
        "yellow lines need repainting | the double yellow lines have faded away completely | no parking curb paint faded away",
        "kerb damaged by parked lorries | lorries mounting the kerb have broken it | trucks have broken the curb pulling up on it",
        # vs environmental_health: a smell from the road drain itself
        "gully smells | the road gully smells and is full of standing water | catch basin smells and has standing water",
    ],
    "parking": [
        # vs waste: a vehicle, however dumped, is parking's
        "car dumped like rubbish | someone has dumped a car on the waste ground, windows smashed and full of rubbish | car dumped on the vacant lot, windows smashed, full of trash",
        "van abandoned on the estate | a van has been left on the estate for two months and nobody knows whose it is | van abandoned in the complex lot for two months",
        # vs highways: cars on the footway, not the footway itself
        "cars on the pavement at the bend | cars park on the pavement at the bend and people walk in the road | cars parking on the sidewalk at the curve, pedestrians in the street",
        "cars blocking the dropped kerb at the crossing | cars park across the dropped kerb at the crossing so wheelchairs cant cross | cars parked blocking the curb ramp at the crosswalk",
        # vs housing: parking on council land is enforcement
        "non residents parking in the flats car park | people who dont live here park in the flats car park every day | non residents parking in our apartment lot every day",
        # vs parks: cars on the grass
        "car parked on the park grass | a car is parked on the grass in the park | car parked on the grass in the park",
    ],
    "parks": [
        # vs highways: the tree, not the road
        "tree fallen on the road | a tree has come down across the road after the wind | tree fell across the street after the storm",
        "branches over the street light | branches from the tree are covering the street light | tree branches blocking the streetlight",
        "overhanging branches on the footpath | the council tree branches hang so low over the footpath you have to duck | low branches from the city tree hanging over the sidewalk",
        # vs waste: the park itself, not its litter
        "park bench vandalised | the benches in the park have been smashed up | benches in the park vandalized",
        # vs housing: grounds, trees and grass of an estate
        "estate trees need cutting | the trees on the estate green are overgrown and block our windows | trees on the housing project lawn overgrown, blocking windows",
        "estate grass not cut | the grass on the estate has not been cut all summer | grass at the housing complex not mowed all summer",
        # vs environmental_health: the pond and the birds of the park
        "dead fish in the park lake | dead fish are floating in the park lake | dead fish in the park lake",
    ],
    "environmental_health": [
        # vs housing: pests and smells even in a council block
        "rats in the block bin store | rats living in the bin store of our block of flats | rats in the trash room of my apartment building",
        "mice in the council flat | mice in our council flat coming up through the floor, need pest control | mice in my public housing unit, need exterminator",
        "cockroaches in the block | cockroaches coming through from the flat next door | roaches coming from the apartment next door",
        "noise from the flat above | music from the flat above every night until 4 | loud music from the apartment above every night until 4am",
        "smell from the takeaway drains | the drains at the takeaway next door stink of fat and the smell comes into our flat | smell from the restaurant drain next door coming into my apartment",
        # vs waste: smells and pests from rubbish, treated or stopped
        "commercial bins rotting behind the restaurant | the restaurant leaves rotting food in open bins and there are rats | restaurant leaving rotting food in open dumpsters, rats everywhere",
        "neighbour garden full of rubbish and rats | the garden next door is full of rubbish and rats are coming into ours | neighbor's yard full of junk and rats coming into mine",
        # vs highways: smoke and dust from works
        "dust from the road works | dust from the road works is blowing into our houses | dust from street construction blowing into homes",
        # vs parks: bonfire on open land
        "bonfire on the field | people keep lighting fires on the field and the smoke fills the houses | people burning fires in the lot, smoke filling houses",
        # vs licensing: the noise, not the licence
        "pub noise late | the pub plays live music till 2am and we cant sleep | bar playing live music until 2am",
    ],
    "housing": [
        # vs environmental_health: damp and mould, not a pest or a smell
        "musty smell and mould | the flat smells musty and mould is growing behind the wardrobe | apartment smells musty and mold behind the furniture",
        "drain smell in my council flat | the waste pipe in our bathroom is cracked and it smells | cracked drain pipe in my unit's bathroom smells",
        "banging door in the block | the communal door closer is broken and the door bangs all night | building door closer broken, door slams all night",
        "extractor fan broken | the bathroom extractor fan has stopped so mould is growing | bathroom exhaust fan broken, mold growing",
        "no water in the flat | no water coming out of any taps in our council flat | no running water in my apartment",
        # vs waste: inside the block is caretaking
        "rubbish in the stairwell | bags of rubbish and an old mattress have been left in our stairwell for weeks | trash and a mattress left in the stairwell of my building for weeks",
        "bin store door broken | the door to the bin store in our block is broken off its hinges | door to the trash room in my building broken",
        # vs highways: lights and paths inside the estate
        "estate walkway lights out | the lights on the walkways between the blocks are out | lights out on the walkways of my housing complex",
        # vs environmental_health: behaviour of a council tenant
        "council neighbour threatening | the council tenant next door shouts threats and smashed our window | neighbor in public housing threatening us and broke our window",
    ],
}

# Whole messages written one by one (no frame, no rendering), for the six street departments
# and, on the boundaries with them, for licensing, planning, benefits and adult social care:
# objecting to a late licence is licensing while the noise itself is environmental health;
# bedsits and fences without permission are planning; a stopped housing benefit is benefits
# even when the arrears are rent; rails for an owner-occupier are adult social care.
HANDWRITTEN = """
# waste
bin day tmrw but they never came last time either. 14 houses on our side all missed
Hello, I've just moved into the area, which day is the recycling collected and do you take soft plastics?
The lads on the bin round keep leaving our bins in the middle of the drive so I can't get the car out. Small thing but every week.
whole street covered in rubbish after the wind knocked the bins over on collection day, crew didnt pick any of it up
There is a shopping trolley, a mattress and about twenty black bags in the brook under the footbridge. Ducks are getting tangled in it.
REQUEST: Bulk trash pickup - old mattress, box spring and a broken recliner. Will put at curb Sunday night.
Illegal dumping in progress - guy in a pickup unloading drywall behind the strip mall right now
Residents report trash cans on the 400 block have not been serviced in two weeks. Cans overflowing into the street.
graffiti on our garden wall facing the footpath, we didnt do it and cant afford to get it cleaned
Please can the litter pickers come along the canal towpath, it's full of cans and nitrous oxide canisters after every weekend.
the bin lorry cracked our drive reversing up the close and the crew took no notice. also they left the recycling box in the road
Dear Sirs, I have been charged for the garden waste service for this year but my brown bin has not been emptied once since August. I should like either the collections or a refund.
I've got a load of garden waste from cutting back the hedge, more than will fit in the bin. Can I book an extra collection or do I have to take it to the tip?
dead pigeon in the middle of the playground at the nursery gate, can someone remove it before the kids come in
Someone has smashed the glass recycling bank and there's glass all over the car park by the village hall
blue bin not emptied because it was 'overweight'?? its cardboard
Hi, the street bin outside the Co-op on the parade has been burnt out and melted. Could a new one be fitted?
Good evening, my neighbour stores about ten bags of rubbish in his front garden and says the council won't take them. It's been months and it is attracting foxes and gulls.
# highways
Caller states vehicle damaged by pothole on the bypass slip road, wishes to claim. Advised claim form online.
pothole rd by the railway arches nearly took my front wheel off on my bike
Potholes all down the lane to the farm, the tarmac has gone to rubble
Dear Highways Department, I write regarding the footway outside the parade of shops, where several slabs have lifted and one is missing entirely. My wife, who is partially sighted, caught her foot and fell last Thursday. I would ask that this be made safe urgently.
the new tarmac they put down last month has already got a hole in it by the drain
lights out all along the dual carriageway from the roundabout to the bridge, really dangerous in the rain
the pedestrian crossing by the care home takes forever to change, old people are giving up and crossing on red
Street light pole on the corner is leaning badly after the storm, looks like it could fall onto the road
can the council put a salt bin at the top of our hill, its really steep and there isnt one
road closed sign left up on our road for three weeks after the work finished and people keep turning round in our drives
Water has been pouring across the road from a broken pipe for two days now and it's started to freeze at night
Report: Street cave-in developing near manhole, approx 2ft across, in eastbound lane
Sidewalk is completely gone in front of the vacant lot, people walking in the street
Traffic signal head turned sideways after the windstorm - drivers can't see it
the hedge from the empty house has grown right over the footpath and the pavement lamp is inside it now
Gully outside the newsagents has had the grid stolen, open hole in the road
Is there a plan to resurface our road? Patch on patch on patch and still full of holes.
# parking
car been parked outside my nans with a for sale sign for 3 months, she cant get her mobility scooter out
The grey van with no wheel trims has been on the verge at the end of our road since summer. Flat tyres, moss growing, no tax.
parents blocking our drive every school run, i leave for work at 8.40 and cant get out
I was issued a penalty charge for parking in a loading bay, but I was unloading furniture for my elderly mother. How do I appeal?
Complaint: parking enforcement officer was rude to my wife when she was helping a disabled passenger out of the car.
Pls can we have a residents only scheme, cant park near our own homes with the hospital staff parking all day
Abandoned vehicle: white sedan, no plates, windows broken, parked in front of hydrant for 3 weeks
Vehicle has been parked on the sidewalk in front of the daycare all week blocking strollers
my blue badge expired last week, can I still use the disabled bays while I wait for the new one
there's a car parked on the grass at the end of the cul de sac for months with a tarpaulin over it, never moves
Hi, can you tell me if the multi storey by the shopping centre is open on boxing day and what it costs?
the pay station in the lot by the courthouse only takes coins, I don't carry cash, got a ticket
Car parked on the zig zags outside the school every morning, same car, the dark blue people carrier
Sir, I have received a penalty charge notice dated the fourteenth for a vehicle I sold in March. I have the V5 slip to prove it. Kindly cancel it.
coaches park up all day along the seafront road in the residents bays
# parks
Branch came down on our car from the council tree outside in last nights wind, who do I claim from?
The big willow by the duck pond has split down the middle, half of it is in the water
council tree on our pavement is dropping sap all over cars and blocking the view from the drive, can it be pruned
the play park at the back of the estate has no working swings at all now, and the roundabout is seized
Please can the grass cutting crew collect the cuttings, they leave them all over the path and the kids tread it into the house
Someone has ridden a quad bike all over the cricket square at the recreation ground
We are a group of parents who would like to start a community garden in the unused corner of the park. Who would we need to speak to?
my allotment plot has been broken into and the shed trashed, is there any security planned for the site
trees in the cemetery are so overgrown the paths are dark and the graves are covered in leaves and moss
The memorial bench for my mother in the park has been snapped in half, the plaque is missing
Tree limb down blocking half the trail at the nature preserve
Request tree trimming - city tree branches hanging over my roof and into gutters
Park restroom has been closed for months, only one in the whole park
Hedges around the recreation ground havent been cut for 2 years, they're over the footpath and you cant see the road
The fencing round the dog park has a hole in it and dogs are getting out onto the road
# environmental_health
the takeaway downstairs has its fryers on till 3am and the fat smell and the noise of the extractor come straight up into our flat
Loud music and shouting from a party house every weekend, different people each time, we think it's an Airbnb
Dear Environmental Health, I wish to complain about the nursery next door, which has installed large air conditioning units facing my bedroom. They hum throughout the night. I have recorded levels on an app.
Customer states he purchased a sandwich at the station kiosk with a use by date two weeks old, and has kept the packet.
rats in next doors garden they leave bread out for the birds and rats are everywhere now
The scrapyard behind our houses burns cables in a barrel most evenings and the smoke is black and stinks of plastic
Saw staff at the bakery handling money and then bread with the same gloves, also a cat in the kitchen
Someone is running a dog breeding setup in their garage, the barking is constant and the smell of dog mess in summer is awful
fumes from the nail salon on the ground floor come up through the floor into our flat and give us headaches
pigeons nesting under the railway bridge, droppings all over the pavement and on people walking under
Complaint of rodent activity in the alley behind the restaurant row, rats seen around grease bins
Noise complaint - construction crew working past 10pm on weeknights with jackhammers
Odor complaint - strong smell of chemicals from the auto body shop spraying with the doors open
Unsanitary conditions at the corner market, flies on the meat, no refrigeration on the milk
The people at the end have a burning barrel going all day, you can't open a window on our side of the estate
ice cream van plays its chimes at 9pm on our estate every night in summer, kids in bed
# housing
Dear Housing Officer, I have been a tenant at the flat for eleven years and the windows have never been replaced. The frames are rotten, they let in the rain, and the heating cannot keep up. I am 79 and my doctor has written a letter in support.
Tenant reports no hot water after boiler service yesterday, engineer left without testing. Requests revisit.
leak under my bath has rotted the floor and its now coming through the downstairs neighbours ceiling. council flat
i am in the hostel and they say i have to leave on monday. where do i go, i have a job and cant lose it
mould in my sons bedroom again after they washed it down in the summer, its on the ceiling now and on his clothes
The communal heating in our sheltered housing block has been off since the weekend. The residents are all over 70.
Rubbish and an old bike left on the landing outside our flat by the people next door, blocking the fire exit, caretaker not interested
Can I buy my council house? I've been a tenant for 15 years. How does right to buy work now
Tenant requesting key fob for communal entrance, lost hers and can't get in at night
Leaseholder here, I've been billed for new windows in the block that haven't been fitted yet, can someone explain the charge
The estate caretaker has not mopped or litter-picked the stairwells of block C since the summer
My ex has moved out and the tenancy is in both our names, how do I get it into my name only
No heat or hot water in the building for the whole winter weekend, landlord not answering, tenants freezing
Tenant complaint: landlord refuses to repair broken windows and mold in the children's room, unit has roaches too
Our council bungalow has no rail by the front step and my husband fell last week, can one be fitted
the shower in our council flat has been leaking behind the tiles for months, the wall is soft and black
# licensing
The bar on the corner has applied to stay open till 3am at weekends. How do I object to the licence?
The pub is serving drinks well after closing time, people coming out at 2am every Saturday. Is that within their licence?
the off licence sells booze to kids in school uniform, I've seen it twice this week
A street food van has started trading on the corner of the retail park every night. Does it have a street trading licence?
Taxi driver refused to take my guide dog and drove off. I have the taxi number from the door.
We want to hold a one day music festival on the rugby club field for about 800 people. What licences do we need?
Can I object to the new betting shop licence on the high street, there are already four
The shisha bar has tables outside on the pavement until 2am, are they licensed for that
How do I get a licence to run a dog grooming and boarding business from home?
# planning
My neighbour has put up a two metre fence and a big shed right on the boundary without any planning. Can you check?
They are converting the house next door into bedsits for eight people, does that need planning permission?
Does putting a dropped kerb in need planning permission as well as the highways bit? It's a classified road.
A phone mast has appeared on the pavement outside the school. Was there any consultation on this?
Builders next door have knocked down the old boundary wall of a listed cottage. Is that allowed?
How do I comment on the application for forty houses on the field behind our road
The new flats being built on the garage site are much taller than the plans showed
# benefits
My housing benefit stopped when I started a new job and now the council says I'm in rent arrears. I only earn a little, can I still get some help with the rent?
I have been told I must pay back an overpayment of housing benefit from two years ago, I can't afford it
Can I get help with my council tax as I've just lost my job?
I'm a council tenant and my universal credit housing element went down, can I get a discretionary housing payment to cover the gap
Applied for the hardship fund for the broken boiler in my private rented house in October and heard nothing
# adult_social_care
My mum owns her bungalow and can't get in and out of the bath anymore, can she get an occupational therapist to look at rails and a bath seat?
Worried about the old man at number 12, he's living in one room with no heating on and not eating, I think he's struggling to cope on his own
My dad has dementia and keeps leaving the house at night, I'm his carer and I'm exhausted, what help is there
My aunt's carers keep missing visits and she's been left without her medication twice
"""


def handwritten() -> dict[str, list[str]]:
    """``HANDWRITTEN`` by department (a ``# department`` line starts each list)."""
    found: dict[str, list[str]] = {}
    department = ""
    for line in HANDWRITTEN.strip().splitlines():
        if line.startswith("# "):
            department = line[2:].strip()
            found[department] = []
        elif line.strip():
            found[department].append(line.strip())
    return found


def _channel(text: str) -> str:
    if text.startswith(("Dear", "Sir")):
        return "email"
    if text.split()[0].rstrip(":") in {"Caller", "Customer", "Tenant", "Residents", "REQUEST", "Report", "Complaint"}:
        return "phone"
    return "sms" if text[0].islower() else "webform"


# Extra detail a resident might add; chosen per department so a ramble carries its own texture.
DETAILS: dict[str, list[str]] = {
    "waste": ["the foxes have had it all over the road", "it stinks in this heat", "the kids walk past it to school",
              "there are flies everywhere now", "the gulls have ripped it open", "it has been like this since last week",
              "i put it out the night before like always", "it is blowing all down the road"],
    "highways": ["a cyclist came off there last week", "my mum nearly went over on it", "cars are swerving round it",
                 "it is getting bigger every day", "it is pitch black walking home", "buses go through it and soak people",
                 "someone is going to get hurt", "it has been like that since the frost"],
    "parking": ["i was late for work because of it", "my mum uses a wheelchair and has to go in the road",
                "it has been there since before christmas", "the ambulance could not get down last month",
                "it happens every single day", "nobody ever comes to check", "i have taken photos",
                "it is always the same vehicle, the silver hatchback"],
    "parks": ["the kids cannot use it", "it is the only green space round here", "a dog walker nearly got hit",
              "it was reported in the summer as well", "it is a danger to the little ones", "the whole path is blocked",
              "it has been like that since the storm", "the pensioners sit there every day"],
    "environmental_health": ["we have not slept properly for weeks", "my daughter has asthma", "it is worse in the evenings",
                             "i have a baby in the house", "it is making us feel sick", "i have kept a diary of it",
                             "it gets into the washing", "you can smell it from the end of the road"],
    "housing": ["my little boy has asthma", "i have reported it twice already", "the kids are sleeping in the front room",
                "i am disabled and it is affecting my health", "we have had to throw out clothes", "i pay my rent every week",
                "the repair team never turned up", "it is freezing in here"],
}

UK_PLACES = ["Tanners Lane", "Quillfeather Road", "Pennyfield Close", "Wrenfield Avenue", "Saltmarsh Way", "the Ashgrove estate",
             "Kestrel House", "Linnet Court", "Quarry Hill", "Bramble Walk", "Dovecote Lane", "Harrow Fields", "Ropewalk",
             "Lockside", "Gorse Rise", "Lanterngate Road", "Sandpiper Close", "the Fernleigh estate", "Brackenmoor Row",
             "Nettlebed Street", "Tidewell Street", "Hopgarden Road", "Marlpit Lane", "Swan Yard", "Flaxfield Drive",
             "Ironbridge Terrace", "the Moorcroft flats", "Ashdown Tower", "Cinder Lane", "Peartree Grove"]
UK_SPOTS = ["outside no {n} {p}", "{p}", "top of {p}", "bottom of {p}", "{p} by the co-op", "the alley behind {p}",
            "ginnel off {p}", "corner of {p} and {q}", "{p} near the school", "opposite the chippy on {p}",
            "the verge on {p}", "the bay outside {n} {p}", "block {n} {p}", "the cut through from {p} to {q}",
            "{p} near the bus stop", "the garages behind {p}", "the green on {p}", "{p} flats", "the close off {p}"]
US_STREETS = ["Kessler Ave", "N Hollis St", "W Fallowmere St", "Birchwood Dr", "Oriole Ct", "E Calloway St", "Dunmore Ave",
              "Larkspire St", "S Fennimore Blvd", "Wexley Rd", "Tamarind Ln", "Grist Mill Rd", "N Prospect Pkwy",
              "Cottonwood Ave", "E Quintrell St", "Harrowgate Pl", "Juniperhollow Way", "Brindlecombe St"]
US_SPOTS = ["the {n}00 block of {s}", "{s} and {t}", "in front of {n}{m} {s}", "corner of {s} & {t}", "{n}{m} {s}",
            "alley behind {n}00 {s}", "across from the school on {s}", "{s} between {t} and {u}", "{n}{m} {s} Apt {a}"]

# Three paragraphs: what comes before and after the request in a long message.
OPENERS = [
    "I hope this is the right place to send this, the website sent me round in circles for twenty minutes.",
    "I've lived here nearly thirty years and I have never had cause to write before, so please bear with me.",
    "First of all I want to say the lady on the phone last week was very helpful about my council tax.",
    "Apologies for the long email, I'm typing this on my phone on the bus.",
    "We moved into the area in the spring and on the whole we love it, the library is brilliant.",
    "My husband says I should just leave it but I don't think that's right.",
    "I'm writing on behalf of my elderly neighbour as well as myself, she doesn't do computers.",
    "I did try ringing but after forty minutes on hold I gave up.",
    "I've been meaning to get in touch for a while, what with the school holidays and work it kept slipping.",
    "I know the council has had its budget cut and everybody is stretched.",
    "This is probably the fourth thing I've had to chase this year, the last one was about my son's school transport.",
    "Our residents' group met on Tuesday and a few things came up that I was asked to pass on.",
]
MIDDLE_LEADS = [
    "The main reason I'm writing though is that",
    "Anyway, what I actually wanted to say is that",
    "The thing that's really getting to us is that",
    "But the real problem, and the reason for this email, is that",
    "On top of all that,",
    "What I need somebody to look at is that",
    "Anyway.",
    "The other thing, and probably the most important,",
]
CLOSERS = [
    "Sorry for going on. If it's not your department please could you pass it to whoever it is.",
    "I'm not expecting miracles but a reply would be nice.",
    "My number is on the form if anyone needs to ring me, I'm in most afternoons.",
    "Also is the tip open on bank holidays? Sorry, different question.",
    "While I'm writing, the polling station signs from May are still up on the fence, not that it matters.",
    "I'll be at the residents' meeting next month if anyone from the council comes.",
    "Thanks for reading this far, I know it's a lot.",
    "Please don't just close this like last time.",
    "I have photos if you need them.",
    "Hope you all have a good weekend.",
]
SIGNOFFS = ["Thanks", "Many thanks", "Cheers", "Regards", "Best wishes", "Kind regards", "Thank you", "Ta"]

ELDERLY = [
    "Dear Sir or Madam,\n\nI am writing to bring to your attention that {s}. I am {age} years of age and {why}. I should be most grateful if you would arrange for somebody to attend to it at your earliest convenience.\n\nYours faithfully",
    "Dear Sirs,\n\nI wish to report that {s}, {at_p}. {D}. I have lived at this address since {year} and I do not recall it ever being so bad. I would be obliged for a written reply.\n\nYours sincerely",
    "To the Council,\n\nForgive my writing, I do not use the computer and my grandson is typing this for me. {S}. {D}. {why_cap}. Would you kindly see to it.\n\nThank you",
    "Dear Council Officer,\n\nRe: {short}, {p}\n\nI write further to my telephone call of last month. {S}, and nothing appears to have been done. {D}. I trust this matter will now receive the attention it deserves.\n\nYours faithfully",
    "Dear Madam or Sir,\n\nMay I draw to your attention a matter which is causing a great deal of distress near my home: {s}. I am a pensioner and {why}. I enclose a stamped addressed envelope for your reply.\n\nYours truly",
]
WHY = ["I am not as steady on my feet as I was", "I live alone and cannot deal with it myself",
       "my late husband always dealt with these things", "I do not drive and rely on walking",
       "my eyesight is poor", "I have been unwell this winter"]

ANGRY = [
    "THIRD TIME reporting this!!! {s}. {D}. what do we pay council tax for",
    "This is absolutely ridiculous. {S} and I have reported it {times} times. {D}. If it is not sorted this week I am going to my councillor.",
    "{short} AGAIN. {D}. Nobody from the council gives a damn do they",
    "I am sick to death of this. {S}. {D}. I have rung, emailed, filled in your useless form. Sort it out or I'm going to the local paper.",
    "Why is it that every time i report something nothing happens?? {s}, {at_p}. {D}. disgraceful",
    "Complaint. {S}. Reported {times} times, reference numbers ignored. {D}. I want a manager to call me.",
    "utterly fed up. {short}, {p}, for {weeks} weeks now and not one person has come out. {D}!!",
    "For the {nth} time: {s}. Do your job.",
]

ESL = [
    "Hello, I want inform you that {esl}. Please can you help for this problem. Thank you",
    "Good day. Problem near my house, {p}. {esl_cap} since {weeks} weeks. What I can do? Thank you very much",
    "Dear council, please i need help. {esl_cap}. {D_cap}. I am waiting your answer",
    "Hi, sorry my english is not good. {esl_cap} near my home in {p}. Who is responsible for this? Thanks",
    "Hello sir, there is problem: {esl}. It is {p}. Please send somebody for check",
    "Excuse me, i would like to make report. {esl_cap}. Already i called one time but nothing change.",
]

FOLLOWUP = [
    "Following up my report from {when} about the {short}, {p}, still nothing has happened",
    "any update on the {short}? reported it {when}",
    "Re my previous email ({short}, {p}). It is still the same. {D}.",
    "Chasing this again - {short}, {p}. Was told it would be done {when}.",
    "I reported {short} ({p}) {when} and got an automatic reply and nothing since. {D}.",
    "still waiting!! {short} {p} reported {when}",
]

CHAT = [
    "hi\n{s}\nits {p}",
    "hello are you a real person\nok\n{s}",
    "Hi, quick one. {S}. {p}.",
    "hi there i need to report something\n{short}\n{p}\n{D}",
    "{S}\nwho do i speak to about that",
    "hello\nhow do i report {short}\nits {p}",
]

US_311 = [
    "{U} {at_loc}.",
    "Caller reports {u} {at_loc}. Caller requests service.",
    "{U}. Location: {loc}.",
    "Resident states {u}. Address: {loc}. Requested callback.",
    "{u}",
    "{U} - {loc}",
    "Service request: {u}. Cross street {t}.",
    "{U}, {loc}. This has been going on for {weeks} weeks.",
    "{U} on {s}. Please send someone out.",
    "Customer called in about {u} {near_loc}, says it is a safety hazard.",
]
US_QUESTIONS = [
    "Caller asks {u}.",
    "{U}?",
    "Hi, {u}? I live {at_loc}.",
    "Resident inquiry: {u}. Address on file {loc}.",
    "Question - {u}. Thanks",
]
US_EMAIL = [
    "Hi, I'd like to report {u} {at_loc}. {Ddetail}. Thank you.",
    "To whom it may concern,\n\n{U} {at_loc}. I have called 311 twice already. {Ddetail}. Can someone please take care of this?\n\nThanks",
    "Hello, I'm a neighbor on {s}. {U}. {Ddetail}. Please advise.",
    "Submitting through the app because nobody answers the phone. {U} {at_loc}.",
    "{U} {at_loc}. My kids walk by there every day. Please fix ASAP.",
]

TEXTISMS = {"you": "u", "your": "ur", "please": "pls", "because": "cos", "for": "4", "to": "2", "are": "r",
            "people": "ppl", "thanks": "thx", "about": "abt", "weeks": "wks", "before": "b4", "tonight": "2nite",
            "see": "c", "why": "y", "been": "bin", "with": "wiv", "and": "n", "its": "its", "no": "no"}
ESL_SWAPS = [(r"\bhas been\b", "is"), (r"\bhave been\b", "are"), (r"\bthe\b ", ""), (r"\bthere is\b", "is"),
             (r"\bdoesnt\b", "not"), (r"\bhasnt\b", "not"), (r"\bcant\b", "cannot"), (r"\bwont\b", "not")]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _noise(word: str, rng: random.Random) -> str:
    """One slip of the thumb: a dropped, swapped or doubled letter."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.4:
        return word[:i] + word[i + 1:]
    if kind < 0.75:
        return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def _typo(sentence: str, rng: random.Random) -> str:
    words = re.sub(r"[^\w\s]", "", sentence.lower()).split()
    out = []
    for word in words:
        roll = rng.random()
        if word in TEXTISMS and roll < 0.5:
            word = TEXTISMS[word]
        elif roll < 0.14:
            word = _noise(word, rng)
        out.append(word)
    return " ".join(out)


def _esl(sentence: str, rng: random.Random) -> str:
    text = sentence
    for pattern, repl in ESL_SWAPS:
        if rng.random() < 0.6:
            text = re.sub(pattern, repl, text)
    return text


def _uk_place(rng: random.Random) -> str:
    p, q = rng.sample(UK_PLACES, 2)
    return rng.choice(UK_SPOTS).format(p=p, q=q, n=rng.randint(2, 90))


def _at(place: str) -> str:
    """"at Tanners Lane", but "outside no 4 Tanners Lane" as it stands."""
    return place if place.split()[0] in {"outside", "opposite", "top", "bottom", "corner"} else f"at {place}"


def _us_place(rng: random.Random) -> tuple[str, str, str]:
    s, t, u = rng.sample(US_STREETS, 3)
    loc = rng.choice(US_SPOTS).format(s=s, t=t, u=u, n=rng.randint(1, 48), m=rng.randint(10, 99),
                                      a=rng.choice(["2B", "4", "11", "3F", "1R"]))
    return loc, s, t


def render(department: str, problem: str, register: str, rng: random.Random) -> str:
    short, sentence, us = (part.strip() for part in problem.split("|"))
    place = _uk_place(rng)
    detail = rng.choice(DETAILS[department])
    fields = {"s": sentence, "S": _cap(sentence), "short": short, "p": place, "at_p": _at(place), "D": _cap(detail),
              "D_cap": _cap(detail), "weeks": rng.randint(2, 9), "times": rng.choice(["three", "four", "5", "six"]),
              "nth": rng.choice(["third", "fourth", "fifth", "tenth"]),
              "when": rng.choice(["last week", "on the 3rd", "a month ago", "before christmas", "10 days ago", "yesterday"])}
    if register == "terse":
        words = short if rng.random() < 0.5 else sentence
        shape = rng.random()
        text = (f"{place} {words}" if shape < 0.4 else f"{words} {place}" if shape < 0.7
                else f"{words}, {place}" if shape < 0.85 else words)
        return text.lower() if rng.random() < 0.8 else text
    if register == "typo":
        text = _typo(sentence, rng)
        if rng.random() < 0.5:
            text = f"{_typo(place, rng)} {text}"
        return text + rng.choice(["", "", " pls", " asap", " again", " sort it out", " ??", " thx"])
    if register in ("us311", "us_email"):
        loc, s, t = _us_place(rng)
        if is_question(problem):
            frame = rng.choice(US_QUESTIONS)
        else:
            frame = rng.choice(US_311 if register == "us311" else US_EMAIL)
        us_detail = rng.choice(["Been like this for weeks", "Already reported, no response", "Please help",
                                "This is the second time I'm reporting it"]
                               + (["It's a hazard", "Kids play on this block", "Elderly neighbors can't get around it",
                                   "Worse at night"] if department in {"highways", "parks", "waste"} else []))
        bare = loc.startswith(("in front of", "across from", "alley behind", "corner of"))
        at_loc = (loc if loc.startswith(("in front of", "across from")) else
                  f"in the {loc}" if loc.startswith("alley") else f"at {loc}" if not bare else f"at the {loc}")
        return frame.format(u=us, U=_cap(us), loc=loc, s=s, t=t, at_loc=at_loc,
                            near_loc=f"near {loc}" if not loc.startswith(("in front", "across")) else loc, weeks=rng.randint(2, 8), Ddetail=us_detail)
    if register == "ramble":
        first, third = rng.sample(OPENERS, 2)
        lead = rng.choice(MIDDLE_LEADS)
        if is_question(problem):
            lead = rng.choice(["What I actually wanted to ask was this.", "Anyway, my question.", "Anyway."])
            body = f"{sentence}? We are at {place}"
        elif rng.random() < 0.5:
            body = f"{sentence} ({place}), {detail}"
        else:
            body = f"{sentence}, {_at(place)}. {_cap(detail)}"
        middle = f"{lead} {body}." if not lead.endswith(".") else f"{lead} {_cap(body)}."
        return (f"{rng.choice(['Hi', 'Hello', 'Good afternoon', 'Dear Council', 'Hiya'])},\n\n{first} {third}\n\n"
                f"{middle}\n\n{rng.choice(CLOSERS)}\n\n{rng.choice(SIGNOFFS)}")
    if register == "elderly":
        why = rng.choice(WHY)
        return rng.choice(ELDERLY).format(age=rng.randint(76, 94), why=why, why_cap=_cap(why),
                                          year=rng.randint(1961, 1992), **fields)
    if register == "angry":
        return rng.choice(ANGRY).format(**fields)
    if register == "esl":
        esl = _esl(sentence, rng)
        return rng.choice(ESL).format(esl=esl, esl_cap=_cap(esl), **fields)
    if register == "title":
        title = _cap(short) if rng.random() < 0.7 else short.upper()
        body = _cap(sentence) + ("?" if is_question(problem) else
                                 rng.choice([".", "", ". " + _cap(detail) + ".", f", {place}."]))
        return f"{title}\n{body}" if rng.random() < 0.6 else f"{title}: {body}"
    if register == "followup":
        return rng.choice(FOLLOWUP).format(**fields)
    if register == "chat":
        return rng.choice(CHAT).format(**fields)
    raise ValueError(register)


OTHER_REGISTERS = ("terse", "typo", "us_email", "ramble", "elderly", "angry", "esl", "followup", "chat", "title")
CHANNELS = {"typo": "sms", "terse": "sms", "ramble": "email", "elderly": "email", "us_email": "email",
            "angry": "email", "us311": "phone"}


QUESTION = re.compile(r"^(how|can|when|where|what|why|is|are|do|i want|i need|request|need|monthly|want)\b")
# registers a question fits: nobody chases, rants about or "attends to" a question
QUESTION_REGISTERS = ("terse", "typo", "us_email", "ramble", "esl", "chat", "title")


def is_question(problem: str) -> bool:
    return any(QUESTION.match(part.strip()) for part in problem.split("|")[1:])


def rows_for(department: str, problems: list[str], rng: random.Random) -> list[dict[str, str]]:
    rows = []
    seen: set[str] = set()
    for number, problem in enumerate(problems, 1):
        pool = QUESTION_REGISTERS if is_question(problem) else OTHER_REGISTERS
        for register in ("us311", *rng.sample(pool, 6)):
            text = render(department, problem, register, rng)
            if text in seen:
                continue
            seen.add(text)
            rows.append({"text": text, "department": department, "channel": CHANNELS.get(register, "webform"),
                         "source": f"{WAVE}-{department}-{number}", "register": register})
    return rows


def main() -> None:
    rng = random.Random(8)  # noqa: S311 - a seeded corpus, not a secret
    hand = handwritten()
    for department in sorted(set(PROBLEMS) | set(hand)):
        rows = rows_for(department, PROBLEMS[department] + BOUNDARIES[department], rng) if department in PROBLEMS else []
        rows += [{"text": text, "department": department, "channel": _channel(text),
                  "source": f"{WAVE}-{department}-hand", "register": "hand"} for text in hand.get(department, [])]
        (OUT / f"{department}-{WAVE}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
        print(f"{department}: {len(rows)}")


if __name__ == "__main__":
    main()
