from core.platform import Platform


async def test_platform_loads_the_eight_municipalities(platform: Platform) -> None:
    assert sorted(platform.snapshot.by_slug) == sorted(
        ["takamatsu", "sanuki", "higashikagawa", "tonosho", "shodoshima", "miki", "naoshima", "ayagawa"]
    )
